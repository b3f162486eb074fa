package train

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
)

// progress shows how far an epoch is: a progress bar on a terminal, plain
// lines (at every tenth of the epoch) otherwise, nothing when quiet.
type progress struct {
	bar        *progressbar.ProgressBar
	w          io.Writer
	desc       string
	total      int
	lastTenth  int
	lastDetail string
}

// progress returns the progress display of a loop of total steps.
func (t *Trainer) progress(desc string, total int) *progress {
	p := &progress{w: t.log, desc: desc, total: total}
	if t.cfg.Quiet {
		p.w = nil
		return p
	}
	if f, ok := t.log.(*os.File); ok && isTerminal(f) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
		)
	}
	return p
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// set moves the display to done steps without printing (for a resumed epoch).
func (p *progress) set(done int) {
	p.lastTenth = done * 10 / max(p.total, 1)
	if p.bar != nil {
		p.bar.Set(done)
	}
}

// update records that done steps are finished; detail is shown beside.
func (p *progress) update(done int, detail string) {
	p.lastDetail = detail
	if p.bar != nil {
		p.bar.Describe(p.desc + " " + detail)
		p.bar.Set(done)
		return
	}
	if p.w == nil {
		return
	}
	if tenth := done * 10 / max(p.total, 1); tenth > p.lastTenth && done < p.total {
		p.lastTenth = tenth
		fmt.Fprintf(p.w, "%s %d/%d %s\n", p.desc, done, p.total, detail)
	}
}

// finish ends the display.
func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	if p.w != nil && p.lastDetail != "" {
		fmt.Fprintf(p.w, "%s done %s\n", p.desc, p.lastDetail)
	}
}
