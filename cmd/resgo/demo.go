package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

func demoCmd() *cobra.Command {
	var arch string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a ResNet on the default backend and check it against the pure-Go reference",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fast, err := backend.Default()
			if err != nil {
				return err
			}
			ref, err := backend.New("ref", 0)
			if err != nil {
				return err
			}
			x := backendtest.Rand(1, 1, 3, 224, 224)
			var logits [2][]float32
			for i, b := range []backend.Backend{fast, ref} {
				m, err := resnet.New(b, arch, resnet.Options{IncludeTop: true, Seed: 1})
				if err != nil {
					return err
				}
				nn.SetTraining(m, false)
				var y *tensor.Tensor
				if err := backend.Catch(func() { m.Forward(x) }); err != nil { // warm-up: primitives, folded weights
					return err
				}
				start := time.Now()
				err = backend.Catch(func() { y = m.Forward(x) })
				if err != nil {
					return err
				}
				logits[i] = append([]float32(nil), backendtest.Plain(b, y)...)
				fmt.Fprintf(out, "%s inference, batch 1, 224x224, backend %s (%d threads): %.1f ms\n", arch, b.Name(), b.Threads(), float64(time.Since(start).Microseconds())/1000)
			}
			fmt.Fprintf(out, "largest difference of the logits (relative to the largest logit): %.2g\n", backendtest.RelErr(logits[0], logits[1]))
			return nil
		},
	}
	cmd.Flags().StringVar(&arch, "arch", "resnet18", "architecture")
	return cmd
}
