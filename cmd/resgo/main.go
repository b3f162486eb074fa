// Command resgo trains, evaluates and runs ResNets: ResNet, Batch
// Normalization and transfer learning in Go, on oneDNN.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl" // registers the oneDNN backend where cgo is on
	_ "github.com/resgo/resgo/backend/ref"  // registers the pure-Go backend
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:   "resgo",
		Short: "ResNet, Batch Normalization and transfer learning in Go",
		Long: `resgo builds torchvision's ResNet family, loads its pretrained .pth files,
trains and fine-tunes on folders of images, and runs inference fast on oneDNN.

The backend is dnnl (oneDNN) where it is built, else ref (pure Go); set
RESGO_BACKEND=ref|dnnl to choose and RESGO_THREADS=N for the thread count.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var cpuProfile string
	var profile *os.File
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file (go tool pprof)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		profile = f
		return nil
	}
	root.PersistentPostRunE = func(*cobra.Command, []string) error {
		if profile == nil {
			return nil
		}
		pprof.StopCPUProfile()
		if err := profile.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}
	root.AddCommand(versionCmd(), infoCmd(), trainCmd(), evalCmd(), predictCmd(), serveCmd(), exportCmd(), splitCmd(), weightsCmd(), benchCmd(), demoCmd(), selftestCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "resgo:", err)
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the backends built in and what they run on (library, CPU instruction set)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
				v = bi.Main.Version
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "resgo %s\nbackends: %v (default first)\nthreads: %d\n", v, backend.Names(), backend.DefaultThreads())
			for _, name := range backend.Names() {
				b, err := backend.New(name, 1)
				if err != nil {
					fmt.Fprintf(out, "%s: %v\n", name, err)
					continue
				}
				fmt.Fprintln(out, backend.Describe(b))
			}
			return nil
		},
	}
}

// requireFlags marks a command's flags as required. It panics if one of
// them is not defined: a mistake in the command's own code.
func requireFlags(cmd *cobra.Command, names ...string) {
	for _, name := range names {
		if err := cmd.MarkFlagRequired(name); err != nil {
			panic(fmt.Sprintf("resgo %s: %v", cmd.Name(), err))
		}
	}
}
