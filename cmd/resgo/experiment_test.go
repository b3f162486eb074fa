package main

import (
	"strings"
	"testing"
)

// TestExperimentRefuses checks resgo experiment's one-line errors for
// command lines it cannot run, before any data is read or trained on (the
// experiments themselves are tested in package experiment).
func TestExperimentRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"experiment"}, "accepts 1 arg"},
		{[]string{"experiment", "degredation", "--out", dir}, `experiment "degredation": want one of degradation, residual-response, batchnorm, transfer, or all`},
		{[]string{"experiment", "batchnorm", "--quick", "--full", "--out", dir}, "--quick and --full: give one of them"},
		{[]string{"experiment", "transfer", "--workers", "-1", "--out", dir}, "--workers -1"},
		{[]string{"experiment", "transfer", "--quick", "--data", dir + "/nowhere", "--out", dir}, dir + "/nowhere"},
	} {
		out, err := execute(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resgo %s: error %v, want one saying %q\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
}
