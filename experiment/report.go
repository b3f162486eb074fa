package experiment

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/resgo/resgo/internal/atomicfile"
)

// report is the text of report.md beside the Result: where the claim
// comes from, how it was measured, more tables, notes.
type report struct {
	title  string   // the experiment, as a heading
	source string   // where the claim is made
	setup  []string // how it was measured: data, nets, budget
	more   []namedTable
	notes  []string

	// Filled in by Run.
	result  *Result
	backend string
	threads int
	opt     Options
}

type namedTable struct {
	caption string
	Table
}

// command returns the command line that reproduces the run.
func (r *report) command() string {
	cmd := "resgo experiment " + r.result.Name
	switch r.opt.Size {
	case Quick:
		cmd += " --quick"
	case Full:
		cmd += " --full"
	}
	return fmt.Sprintf("%s --seed %d", cmd, r.opt.Seed)
}

// markdown returns report.md.
func (r *report) markdown() string {
	res := r.result
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.title)
	fmt.Fprintf(&b, "**Claim** (%s): %s\n\n", r.source, res.Claim)
	held := "**Held here**"
	if !res.Held {
		held = "**Did not hold here**"
	}
	fmt.Fprintf(&b, "%s: %s\n\n", held, res.Verdict)
	same := "the same seed gives the same numbers, except the times"
	if r.backend != "ref" {
		// oneDNN's sums run in an order that depends on the machine's
		// instruction set and the thread count.
		same += ", on this machine at this thread count (not under RESGO_THREADS=auto)"
	}
	fmt.Fprintf(&b, "Made by `%s` (size %s) on backend %s with %d threads in %s; %s.\n\n",
		r.command(), r.opt.Size, r.backend, r.threads, res.Elapsed.Round(time.Second), same)
	if len(r.setup) > 0 {
		b.WriteString("## Setup\n\n")
		for _, s := range r.setup {
			fmt.Fprintf(&b, "- %s\n", s)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Results\n\n")
	writeTable(&b, res.Table)
	for _, t := range r.more {
		fmt.Fprintf(&b, "\n%s\n\n", t.caption)
		writeTable(&b, t.Table)
	}
	if len(res.Figures) > 0 {
		b.WriteString("\n## Figures\n\n")
		for _, f := range res.Figures {
			name := filepath.Base(f)
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(name, ".png"), name)
		}
	}
	if len(res.CSV) > 0 {
		b.WriteString("## Raw numbers\n\n")
		for _, f := range res.CSV {
			fmt.Fprintf(&b, "- `%s`\n", filepath.Base(f))
		}
		b.WriteString("\n")
	}
	if len(r.notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// writeTable writes t as a Markdown table.
func writeTable(b *strings.Builder, t Table) {
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(t.Header, " | "), strings.Repeat("---|", len(t.Header)))
	for _, row := range t.Rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(row, " | "))
	}
}

// writeFile writes text into path atomically.
func writeFile(path, text string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	})
}

// writeCSV writes a header and rows as CSV into path atomically.
func writeCSV(path string, header []string, rows [][]string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write(header); err != nil {
			return err
		}
		if err := cw.WriteAll(rows); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

// num formats a number for a CSV file: as short as exact enough.
func num(v float64) string { return fmt.Sprintf("%.6g", v) }
