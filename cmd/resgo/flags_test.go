package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/train"
)

// execute runs a resgo command line (without "resgo") on a new command
// tree, as main does, and returns its output.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// parse finds the command of a command line (without "resgo") in a new
// command tree and parses its flags, as Execute would before running it.
func parse(t *testing.T, args ...string) (*cobra.Command, error) {
	t.Helper()
	cmd, rest, err := newRootCmd().Find(args)
	if err != nil {
		return nil, err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return cmd, err
	}
	return cmd, nil
}

// TestAliases parses command lines with torchvision's and timm's flag
// names: each sets its resgo flag, which then counts as given (what
// train's --resume checks), and a bad value is reported under the name
// given.
func TestAliases(t *testing.T) {
	for _, c := range []struct {
		line string
		want map[string]string // resgo flag: value
	}{
		{"train --model resnet18 -b 32 --opt sgd --sched cosine --wd 1e-4 -j 2 --output-dir runs/x",
			map[string]string{"arch": "resnet18", "batch": "32", "optimizer": "sgd", "schedule": "cosine", "weight-decay": "0.0001", "workers": "2", "out": "runs/x"}},
		{"train --batch-size 8 --num-workers 3", map[string]string{"batch": "8", "workers": "3"}},
		{"predict --model resnet50 --batch-size 4 --weights w.pth", map[string]string{"arch": "resnet50", "batch": "4"}},
		{"eval -b 16 -j 1 --output-dir e --data d --checkpoint c", map[string]string{"batch": "16", "workers": "1", "out": "e"}},
		{"bench --model resnet50 -b 8", map[string]string{"arch": "resnet50", "batch": "8"}},
		{"info --model resnet20", map[string]string{"arch": "resnet20"}},
		{"demo --output-dir runs/d", map[string]string{"out": "runs/d"}},
		{"split --src a --dst b --val-split 0.25", map[string]string{"val-rate": "0.25"}},
		{"split --src a --dst b --val-rate 0.3", map[string]string{"val-rate": "0.3"}}, // the former name still works
	} {
		cmd, err := parse(t, strings.Fields(c.line)...)
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		for name, want := range c.want {
			f := cmd.Flags().Lookup(name)
			if f == nil || f.Value.String() != want || !f.Changed {
				t.Errorf("%s: --%s = %v, want %s, given", c.line, name, f, want)
			}
		}
	}

	for _, c := range []struct{ line, want string }{
		{"train -b x", `invalid argument "x" for "-b, --batch-size" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{"export --output-dir x", "unknown flag: --output-dir"}, // export's --out is a file
		{"info -b 2", "unknown shorthand flag: 'b' in -b"},      // info has no --batch
	} {
		if _, err := parse(t, strings.Fields(c.line)...); err == nil || err.Error() != c.want {
			t.Errorf("%s: error %v, want %q", c.line, err, c.want)
		}
	}
}

// TestAliasesInHelp checks that the help names the aliases beside their
// flags, and split's validation fraction as --val-split only.
func TestAliasesInHelp(t *testing.T) {
	out, err := execute(t, "train", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(also --model)", "(also -b, --batch-size)", "(also --opt)", "(also --sched)", "(also --wd)",
		"(also -j, --num-workers)", "(also --output-dir)", "\nExamples:\n  "} {
		if !strings.Contains(out, want) {
			t.Errorf("train --help lacks %q", want)
		}
	}
	out, err = execute(t, "split", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "--val-split float") || !strings.Contains(out, "(default 0.1)") || strings.Contains(out, "val-rate") {
		t.Errorf("split --help, want --val-split and no --val-rate:\n%s", out)
	}
}

// TestAliasesRun runs split and train with the aliases: split holds out
// the fraction --val-split says, and train's checkpoint records the
// architecture, batch and optimizer given by --model, -b and --opt, in
// the folder --output-dir names; --resume refuses -b as it refuses --batch.
func TestAliasesRun(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	if err := shapes.WriteFolder(photos, []int{0, 1}, 8, 20, 1); err != nil {
		t.Fatal(err)
	}
	split := filepath.Join(dir, "split")
	out, err := execute(t, "split", "--src", photos, "--dst", split, "--val-split", "0.25")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if val, _ := os.ReadDir(filepath.Join(split, "val", "disc")); len(val) != 2 || !strings.Contains(out, "[disc] 6 train, 2 val") {
		t.Errorf("--val-split 0.25 of 8 images: %d in val/disc, output:\n%s", len(val), out)
	}

	runDir := filepath.Join(dir, "run")
	out, err = execute(t, "train", "--data", split, "--model", "resnet20", "-b", "4", "--opt", "sgd", "--lr", "0.01",
		"--size", "16", "--epochs", "1", "-j", "1", "--quiet", "--output-dir", runDir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	st, err := train.ReadState(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.Config; c.Arch != "resnet20" || c.Batch != 4 || c.Optimizer != "sgd" {
		t.Errorf("the run's settings: arch %s, batch %d, optimizer %s; want resnet20, 4, sgd", c.Arch, c.Batch, c.Optimizer)
	}

	// --resume refuses a setting changed through an alias as through the
	// flag itself.
	out, err = execute(t, "train", "--resume", "--output-dir", runDir, "--epochs", "2", "-b", "8", "--quiet")
	if err == nil || !strings.Contains(err.Error(), "--batch 8 (the run's: 4)") {
		t.Errorf("--resume with -b 8: %v\n%s", err, out)
	}
}

// TestExamples checks every command's examples: each command has some,
// and each line is a valid command line of its command (its flags parse,
// its arguments are accepted, its required flags are there, an
// architecture named is one resgo builds).
func TestExamples(t *testing.T) {
	root := newRootCmd()
	seen := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		seen[c.CommandPath()] = true
		if c.Example == "" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for path, lines := range examples {
		if !seen[path] {
			t.Errorf("examples of %q: no such command", path)
		}
		for _, line := range lines {
			if strings.HasPrefix(line, "#") {
				continue
			}
			args := strings.Fields(line)
			if args[0] != "resgo" {
				t.Errorf("%s: example %q does not start with resgo", path, line)
				continue
			}
			cmd, err := parse(t, args[1:]...)
			switch {
			case err != nil:
				t.Errorf("%s: example %q: %v", path, line, err)
				continue
			case cmd.CommandPath() != path && !strings.HasPrefix(cmd.CommandPath(), path+" "):
				t.Errorf("example %q of %s is one of %s", line, path, cmd.CommandPath()) // a parent's may be its subcommands'

			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("%s: example %q: %v", path, line, err)
			}
			if err := cmd.ValidateRequiredFlags(); err != nil {
				t.Errorf("%s: example %q: %v", path, line, err)
			}
			if f := cmd.Flags().Lookup("arch"); f != nil && f.Changed {
				if _, ok := resnet.Architectures[f.Value.String()]; !ok {
					t.Errorf("%s: example %q: unknown architecture %s", path, line, f.Value)
				}
			}
		}
	}
}

// TestArchShownOptional checks the usage line of every command with an
// --arch flag: optional everywhere, it is shown in brackets.
func TestArchShownOptional(t *testing.T) {
	var walk func(*cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		f := c.Flags().Lookup("arch")
		if f == nil {
			return
		}
		n++
		if isRequired(f) {
			t.Errorf("%s: --arch is required", c.CommandPath())
		}
		if use := c.UseLine(); archInUse.MatchString(use) {
			t.Errorf("%s: usage %q shows --arch as required", c.CommandPath(), use)
		}
	}
	walk(newRootCmd())
	if n < 5 {
		t.Errorf("%d commands with --arch, want train, predict, serve, info, bench and more", n)
	}
}

// TestVersionFlag checks that resgo --version prints the version that
// resgo version prints first.
func TestVersionFlag(t *testing.T) {
	short, err := execute(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	long, err := execute(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(long, "\n")
	if short != first+"\n" || !strings.HasPrefix(short, "resgo ") {
		t.Errorf("resgo --version printed %q, resgo version's first line is %q", short, first)
	}
}

// TestValRateAfterRename checks the other side of split's alias: were
// split's own flag renamed --val-split, --val-rate would still set it,
// hidden from the help.
func TestValRateAfterRename(t *testing.T) {
	root := &cobra.Command{Use: "resgo"}
	split := &cobra.Command{Use: "split", Run: func(*cobra.Command, []string) {}}
	rate := split.Flags().Float64("val-split", 0.1, "fraction of each class for validation")
	root.AddCommand(split)
	addAliases(root)
	if err := split.ParseFlags([]string{"--val-rate", "0.3"}); err != nil || *rate != 0.3 || !split.Flags().Lookup("val-split").Changed {
		t.Errorf("--val-rate 0.3: %v, --val-split = %v", err, *rate)
	}
	if f := split.Flags().Lookup("val-rate"); f == nil || !f.Hidden || split.Flags().Lookup("val-split").Hidden {
		t.Errorf("--val-rate %+v should be hidden, --val-split shown", f)
	}
}
