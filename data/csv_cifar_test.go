package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCSV(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fl, err := OpenCSV(write("named.csv", "path,label\nimgs/a.png,tulip\n/abs/b.png, daisy\nc.png,tulip\n"))
	if err != nil {
		t.Fatal(err)
	}
	if fl.Len() != 3 || strings.Join(fl.Classes(), ",") != "daisy,tulip" || fl.Label(0) != 1 || fl.Label(1) != 0 ||
		fl.Source(0) != filepath.Join(dir, "imgs/a.png") || fl.Source(1) != "/abs/b.png" {
		t.Errorf("named labels: %d rows, classes %v, labels %d %d, paths %s %s", fl.Len(), fl.Classes(), fl.Label(0), fl.Label(1), fl.Source(0), fl.Source(1))
	}
	fl, err = OpenCSV(write("numeric.csv", "a.png,10\nb.png,2\nc.png,0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.Classes()) != 11 || fl.Label(0) != 10 || fl.Label(1) != 2 {
		t.Errorf("numeric labels: classes %v, labels %d %d", fl.Classes(), fl.Label(0), fl.Label(1))
	}
	for name, c := range map[string]struct{ text, want string }{
		"three.csv": {"a.png,1,x\n", "line 1: 3 fields, want path,label"},
		"empty.csv": {"path,label\n", "no path,label rows"},
		"blank.csv": {"a.png,1\n,2\n", "line 2: an empty path or label"},
		"quote.csv": {"a.png,\"1\n", "parse error"},
		"zero.csv":  {"a.png,01\nb.png,1\n", `label "01": numeric labels must be written 0..1`},
	} {
		p := write(name, c.text)
		if _, err := OpenCSV(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file with %q", name, err, c.want)
		}
	}
	// Open: a .csv spec is split like a folder of class folders.
	rows := "path,label\n"
	for i := range 20 {
		rows += filepath.Join("x", string(rune('a'+i))+".png") + "," + []string{"cat", "dog"}[i%2] + "\n"
	}
	sets, err := Open(write("list.csv", rows), OpenOptions{ValSplit: 0.2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sets.Train.Len() != 16 || sets.Val.Len() != 4 {
		t.Errorf("split %d / %d", sets.Train.Len(), sets.Val.Len())
	}
}

// cifarRecords returns n records: label i%10, red = i, green = 100+p%50,
// blue = 255-i, p the pixel index.
func cifarRecords(n int) []byte {
	var b []byte
	for i := range n {
		rec := make([]byte, cifarRecord)
		rec[0] = byte(i % 10)
		for p := range 1024 {
			rec[1+p], rec[1+1024+p], rec[1+2048+p] = byte(i), byte(100+p%50), byte(255-i)
		}
		b = append(b, rec...)
	}
	return b
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	for name, n := range map[string]int{"data_batch_1.bin": 3, "data_batch_2.bin": 2, "test_batch.bin": 4} {
		if err := os.WriteFile(filepath.Join(dir, name), cifarRecords(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sets, err := Open(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sets.CIFAR10 || sets.Train.Len() != 5 || sets.Val.Len() != 4 || sets.Train.Classes()[9] != "truck" {
		t.Fatalf("sets: %+v", sets)
	}
	img, _ := sets.Train.Image(4) // the second record of data_batch_2
	if sets.Train.Label(4) != 1 || img.W != 32 || img.C != 3 || img.Pix[3*7] != 1 || img.Pix[3*7+1] != 107 || img.Pix[3*7+2] != 254 {
		t.Errorf("image 4: label %d, pixel 7 %v", sets.Train.Label(4), img.Pix[21:24])
	}
	eval, err := Open(dir, OpenOptions{EvalOnly: true})
	if err != nil || eval.Train != nil || eval.Val.Len() != 4 {
		t.Errorf("eval only: %v %+v", err, eval)
	}
	bad := filepath.Join(t.TempDir(), "cut")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	recs := cifarRecords(2)
	os.WriteFile(filepath.Join(bad, "data_batch_1.bin"), recs[:len(recs)-5], 0o644)
	os.WriteFile(filepath.Join(bad, "test_batch.bin"), recs, 0o644)
	if _, err := Open(bad, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "data_batch_1.bin: 6141 bytes is not a whole number of CIFAR-10 records") {
		t.Errorf("truncated file: %v", err)
	}
	recs[cifarRecord] = 10
	os.WriteFile(filepath.Join(bad, "data_batch_1.bin"), recs, 0o644)
	if _, err := Open(bad, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "data_batch_1.bin: record 1 has label 10") {
		t.Errorf("bad label: %v", err)
	}
}
