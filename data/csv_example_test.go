package data_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/resgo/resgo/data"
)

// A CSV file list: paths relative to the file, class names as labels.
func ExampleOpenCSV() {
	dir, err := os.MkdirTemp("", "csv")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	list := filepath.Join(dir, "train.csv")
	rows := "path,label\nimages/1.jpg,tulip\nimages/2.jpg,daisy\nimages/3.jpg,tulip\n"
	if err := os.WriteFile(list, []byte(rows), 0o644); err != nil {
		panic(err)
	}
	ds, err := data.OpenCSV(list)
	if err != nil {
		panic(err)
	}
	fmt.Println(ds.Len(), ds.Classes(), ds.Label(0), filepath.Base(ds.Source(0)))
	// Output: 3 [daisy tulip] 1 1.jpg
}
