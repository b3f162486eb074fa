package experiment_test

import (
	"context"
	"fmt"
	"log"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl" // oneDNN, where cgo is on
	_ "github.com/resgo/resgo/backend/ref"  // pure Go
	"github.com/resgo/resgo/experiment"
)

// Measure the degradation problem of the ResNet paper (its Fig. 1) on
// Fashion-MNIST, printing each stage, and say whether the claim held:
// what `resgo experiment degradation --quick` does (without the progress
// bars). report.md, the figures and the CSV are in runs/experiments/degradation.
func ExampleRun() {
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	opt := experiment.Options{Out: "runs/experiments", Size: experiment.Quick, Seed: 0,
		Hooks: experiment.Hooks{Stage: func(line string) { fmt.Println(line) }}}
	res, err := experiment.Run(context.Background(), b, "degradation", opt)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Claim)
	fmt.Println("held:", res.Held, "-", res.Verdict)
	fmt.Println("report:", res.Report)
}
