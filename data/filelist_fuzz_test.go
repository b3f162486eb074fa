package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzFileLists feeds arbitrary bytes to the two list readers of --data,
// as a CSV file list and as a CIFAR-10 binary file: neither may panic,
// an error is one line naming the file, and a list read has consistent
// labels.
func FuzzFileLists(f *testing.F) {
	f.Add([]byte("path,label\na.png,cat\nb.png,dog\n"))
	f.Add([]byte("a.png,3\n\"b,c.png\",1\n"))
	f.Add(cifarRecords(1))
	f.Add([]byte{10})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		csvPath, binPath := filepath.Join(dir, "list.csv"), filepath.Join(dir, "data_batch_1.bin")
		if err := os.WriteFile(csvPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(binPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if fl, err := OpenCSV(csvPath); err != nil {
			if !strings.Contains(err.Error(), csvPath) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("CSV error %q: not one line naming the file", err)
			}
		} else {
			for i := range fl.Len() {
				if l := fl.Label(i); l < 0 || l >= len(fl.Classes()) {
					t.Fatalf("label %d of %d classes", l, len(fl.Classes()))
				}
			}
		}
		if m, err := ReadCIFAR10(binPath); err != nil {
			if !strings.Contains(err.Error(), binPath) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("CIFAR-10 error %q: not one line naming the file", err)
			}
		} else if len(m.Pix) != m.Len()*3*32*32 {
			t.Fatalf("%d values for %d images", len(m.Pix), m.Len())
		}
	})
}
