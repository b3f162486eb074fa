package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

func infoCmd() *cobra.Command {
	var (
		arch          string
		classes, size int
		inChannels    int
		noTop, small  bool
	)
	cmd := &cobra.Command{
		Use:   "info --arch NAME",
		Short: "Print a model's layers, output shapes, parameters and multiply-adds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := resnet.New(nil, arch, resnet.Options{NumClasses: classes, IncludeTop: !noTop, InChannels: inChannels, SmallStem: small})
			if err != nil {
				return err
			}
			rows, err := m.Summary(size, size)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "layer\ttype\toutput\tparams\tmult-adds\t")
			var macs int64
			params := 0
			for _, r := range rows {
				shape := strings.Trim(strings.ReplaceAll(fmt.Sprint(r.Output), " ", "x"), "[]")
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.Type, shape, group(int64(r.Params)), group(r.MACs))
				macs += r.MACs
				params += r.Params
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%s at %dx%d: %s parameters, %.3f GMACs per image, %d state entries\n",
				arch, size, size, group(int64(params)), float64(macs)/1e9, len(nn.State(m)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "resnet18", "architecture: "+strings.Join(resnet.Names(), ", "))
	f.IntVar(&classes, "num-classes", 1000, "number of classes of the fc layer")
	f.IntVar(&size, "size", 224, "input height and width")
	f.IntVar(&inChannels, "in-channels", 3, "input channels")
	f.BoolVar(&noTop, "no-top", false, "leave out average pooling and fc (include_top=false)")
	f.BoolVar(&small, "small-stem", false, "3x3 stride-1 stem without max pooling, for small images")
	return cmd
}

// group writes n with thousands separators: 11,689,512.
func group(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
