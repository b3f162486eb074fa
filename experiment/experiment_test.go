package experiment

import (
	"context"
	"encoding/csv"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl" // registers "dnnl" where cgo is on
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/data"
)

// needData skips a test without Fashion-MNIST, and fails it under CI,
// which installs it.
func needData(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(data.FashionMNISTDir, "t10k-labels-idx1-ubyte.gz")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must install dataset-fashion-mnist:", err)
		}
		t.Skip("no Fashion-MNIST:", err)
	}
}

// fastBackend returns the default backend, skipping the test on the
// pure-Go one, which trains ResNet-20 at about 80 images/s: the
// experiments' tests run in the oneDNN build.
func fastBackend(t *testing.T) backend.Backend {
	t.Helper()
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() == "ref" {
		t.Skip("the experiments run on the oneDNN backend")
	}
	return b
}

// expected is what each experiment's main table holds: its row count and
// the first cells of its rows.
var expected = map[string]struct {
	rows  int
	first []string
}{
	"degradation":       {4, depthNets},
	"residual-response": {4, depthNets},
	"batchnorm":         {6, []string{"resnet20", "resnet20", "resnet20", "resnet20_nobn", "resnet20_nobn", "resnet20_nobn"}},
	"transfer":          {12, transferFirstCells(transferBudgetFor(testSize()).sizes)},
}

// testSize is the size TestExperiments runs at: the --quick form (about
// two minutes for the four on 2 idle cores) when RESGO_EXPERIMENT_QUICK=1,
// as make test runs it on its own after the rest of the suite (beside
// other test binaries on 2 cores it takes six times as long); else the
// test-only smoke size (seconds).
func testSize() Size {
	if os.Getenv("RESGO_EXPERIMENT_QUICK") == "1" {
		return Quick
	}
	return smoke
}

// transferFirstCells returns the sizes, each as many times as there are
// modes: the first column of the transfer table.
func transferFirstCells(sizes []int) []string {
	var out []string
	for _, n := range sizes {
		for range transferModes {
			out = append(out, strconv.Itoa(n))
		}
	}
	return out
}

// TestExperiments runs every experiment in one output folder (residual-response reuses the nets of degradation), and
// checks what each writes: report.md's table (its shape, every cell
// filled, numbers in range; never an outcome), the CSV files and the
// figures.
func TestExperiments(t *testing.T) {
	needData(t)
	b := fastBackend(t)
	out := t.TempDir()
	var stages []string
	opt := Options{Out: out, Size: testSize(), Seed: 1, Hooks: Hooks{Stage: func(s string) { stages = append(stages, s) }}}
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			stages = stages[:0]
			res, err := Run(context.Background(), b, name, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(stages) == 0 {
				t.Error("no stage reported")
			}
			checkResult(t, res, name)
			if name == "residual-response" && slices.ContainsFunc(stages, func(s string) bool { return strings.Contains(s, "training images") }) {
				t.Errorf("residual-response trained again instead of reusing the nets of degradation: %q", stages)
			}
		})
	}
}

// checkResult checks an experiment's files against its Result.
func checkResult(t *testing.T, res *Result, name string) {
	t.Helper()
	want := expected[name]
	if res.Claim == "" || res.Verdict == "" {
		t.Errorf("claim %q, verdict %q", res.Claim, res.Verdict)
	}
	text, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	md := string(text)
	for _, s := range []string{res.Claim, res.Verdict, "## Results"} {
		if !strings.Contains(md, s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	if strings.Contains(md, "Held here") == strings.Contains(md, "Did not hold here") {
		t.Error("report.md must say whether the claim held, once")
	}
	table := firstTable(t, md)
	if !slices.Equal(table.Header, res.Table.Header) {
		t.Errorf("report.md's table has header %q, the result %q", table.Header, res.Table.Header)
	}
	if len(table.Rows) != want.rows {
		t.Fatalf("report.md's table has %d rows, want %d:\n%s", len(table.Rows), want.rows, md)
	}
	for i, row := range table.Rows {
		if len(row) != len(table.Header) {
			t.Errorf("row %d has %d cells, the header %d: %q", i, len(row), len(table.Header), row)
			continue
		}
		if row[0] != want.first[i] {
			t.Errorf("row %d starts with %q, want %q", i, row[0], want.first[i])
		}
		for j, cell := range row {
			if !sane(cell) {
				t.Errorf("row %d, %s: %q", i, table.Header[j], cell)
			}
		}
	}
	for _, f := range res.CSV {
		checkCSV(t, f)
	}
	if len(res.Figures) == 0 {
		t.Error("no figure")
	}
	for _, f := range res.Figures {
		checkPNG(t, f)
		if !strings.Contains(md, filepath.Base(f)) {
			t.Errorf("report.md does not show %s", filepath.Base(f))
		}
	}
}

// sane reports whether a table cell is filled and, when it is a number,
// in range: a percentage in [0, 100], any other number finite and not
// negative (error rates, times, counts, standard deviations, losses).
func sane(cell string) bool {
	if strings.TrimSpace(cell) == "" {
		return false
	}
	if p, ok := strings.CutSuffix(cell, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		return err == nil && v >= 0 && v <= 100
	}
	if v, err := strconv.ParseFloat(cell, 64); err == nil {
		return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0
	}
	return true // words: a net, a mode, "not reached", "at step 12 (loss 1e+04)"
}

// firstTable parses the first Markdown table of md.
func firstTable(t *testing.T, md string) Table {
	t.Helper()
	var tab Table
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "| ") {
			continue
		}
		cells := func(l string) []string {
			parts := strings.Split(strings.Trim(l, "|"), "|")
			for k := range parts {
				parts[k] = strings.TrimSpace(parts[k])
			}
			return parts
		}
		tab.Header = cells(lines[i])
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "|---") {
			t.Fatalf("table without a separator line: %q", lines[i:min(i+2, len(lines))])
		}
		for _, l := range lines[i+2:] {
			if !strings.HasPrefix(l, "|") {
				break
			}
			tab.Rows = append(tab.Rows, cells(l))
		}
		return tab
	}
	t.Fatalf("no table in report.md:\n%s", md)
	return tab
}

// checkCSV checks that a CSV file has a header and rows of as many fields.
func checkCSV(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(rows) < 2 {
		t.Errorf("%s: %d rows", path, len(rows))
	}
}

// checkPNG checks that a figure is a PNG of a sensible size.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
		t.Errorf("%s is %v", path, b)
	}
}

// TestSameSeedSameNumbers runs the transfer experiment (pretraining, the
// four modes, evaluations) twice with one seed, on the default backend
// (oneDNN, or the pure-Go one in a CGO_ENABLED=0 build), and compares
// every number but the times.
func TestSameSeedSameNumbers(t *testing.T) {
	needData(t)
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	var tables [2][][]string
	var csvs [2][][]string
	for i := range 2 {
		res, err := Run(context.Background(), b, "transfer", Options{Out: t.TempDir(), Size: smoke, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		tables[i] = withoutColumn(res.Table.Header, res.Table.Rows, "training seconds")
		f, err := os.Open(res.CSV[0])
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		csvs[i] = withoutColumn(rows[0], rows[1:], "seconds")
	}
	if !slices.EqualFunc(tables[0], tables[1], slices.Equal) {
		t.Errorf("on %s the same seed gave\n%q\nthen\n%q", b.Name(), tables[0], tables[1])
	}
	if !slices.EqualFunc(csvs[0], csvs[1], slices.Equal) {
		t.Errorf("on %s the same seed gave different per-epoch numbers", b.Name())
	}
}

// withoutColumn returns rows without the column named name.
func withoutColumn(header []string, rows [][]string, name string) [][]string {
	k := slices.Index(header, name)
	var out [][]string
	for _, r := range rows {
		if k >= 0 {
			r = slices.Delete(slices.Clone(r), k, k+1)
		}
		out = append(out, r)
	}
	return out
}
