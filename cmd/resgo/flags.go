package main

import (
	"errors"
	"regexp"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// An alias is a second name of a command's flag: the name torchvision's
// and timm's reference training scripts (references/classification/
// train.py, timm's train.py) give it, so that their users' habits work,
// or the documented name of a flag whose command still spells it another
// way.
type alias struct {
	name      string // the alias, --name
	shorthand string // and -shorthand ("" for none)
	target    string // the flag it sets
	// commands limits the alias to these commands (their paths, "resgo
	// train"); nil means every command that has the target flag.
	commands []string
	// replaces makes the alias the name the help shows, in the target's
	// place; the target still works, hidden. Otherwise the alias is the
	// hidden one, mentioned in the target's usage.
	replaces bool
}

// aliases are the flag aliases of every command. The values of the aliased
// flags mean the same in resgo and in the scripts (timm's --sched names
// cosine and step as resgo does; torchvision's --lr-scheduler does not,
// so it is not here).
var aliases = []alias{
	{name: "model", target: "arch"},
	{name: "batch-size", shorthand: "b", target: "batch"},
	{name: "output-dir", target: "out", commands: []string{"resgo train", "resgo eval", "resgo demo"}}, // export's --out is a file
	{name: "opt", target: "optimizer"},
	{name: "sched", target: "schedule"},
	{name: "wd", target: "weight-decay"},
	{name: "smoothing", target: "label-smoothing"},           // timm's name
	{name: "num-workers", shorthand: "j", target: "workers"}, // the tutorial's DataLoader num_workers
	// One name for the validation fraction, --val-split as in train; the
	// second entry keeps --val-rate working should split's own flag be
	// renamed --val-split.
	{name: "val-split", target: "val-rate", commands: []string{"resgo split"}, replaces: true},
	{name: "val-rate", target: "val-split", commands: []string{"resgo split"}},
}

// addAliases adds the aliases to cmd and every command below it. An alias
// whose name or shorthand a command already uses is left out there.
func addAliases(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		addAliases(c)
	}
	fs := cmd.Flags()
	for _, a := range aliases {
		target := fs.Lookup(a.target)
		if target == nil || fs.Lookup(a.name) != nil || (a.commands != nil && !slices.Contains(a.commands, cmd.CommandPath())) {
			continue
		}
		if a.shorthand != "" && fs.ShorthandLookup(a.shorthand) != nil {
			continue
		}
		fs.AddFlag(&pflag.Flag{
			Name:        a.name,
			Shorthand:   a.shorthand,
			Usage:       target.Usage,
			Value:       aliasValue{fs: fs, target: target},
			DefValue:    target.DefValue,
			NoOptDefVal: target.NoOptDefVal,
			Hidden:      !a.replaces,
		})
		if a.replaces {
			target.Hidden = true
			continue
		}
		spelled := "--" + a.name
		if a.shorthand != "" {
			spelled = "-" + a.shorthand + ", " + spelled
		}
		target.Usage += " (also " + spelled + ")"
	}
}

// aliasValue is the value of an alias flag: setting it sets the target
// flag through its flag set, so that the target counts as given
// (pflag.Flag.Changed, which train's --resume checks).
type aliasValue struct {
	fs     *pflag.FlagSet
	target *pflag.Flag
}

// String returns the target's value.
func (v aliasValue) String() string { return v.target.Value.String() }

// Type returns the target's type.
func (v aliasValue) Type() string { return v.target.Value.Type() }

// Set sets the target to s. A refused value's error is the target value's
// own, which pflag then reports under the alias's name.
func (v aliasValue) Set(s string) error {
	err := v.fs.Set(v.target.Name, s)
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		return invalid.Unwrap()
	}
	return err
}

// archInUse matches "--arch VALUE" in a usage line, outside brackets.
var archInUse = regexp.MustCompile(`(^|\s)--arch (\S+)`)

// showArchOptional brackets --arch in the usage lines of cmd and the
// commands below it, "[--arch NAME]", where it is optional: wherever it is
// not marked required (every command has a default or reads the
// architecture from the weights).
func showArchOptional(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		showArchOptional(c)
	}
	f := cmd.Flags().Lookup("arch")
	if f == nil || isRequired(f) {
		return
	}
	cmd.Use = archInUse.ReplaceAllString(cmd.Use, "$1[--arch $2]")
}

// isRequired reports whether a flag is marked required
// (cobra.Command.MarkFlagRequired).
func isRequired(f *pflag.Flag) bool {
	return slices.Contains(f.Annotations[cobra.BashCompOneRequiredFlag], "true")
}
