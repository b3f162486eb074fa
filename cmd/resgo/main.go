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
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "resgo:", err)
		os.Exit(1)
	}
}

// newRootCmd returns the resgo command with all its subcommands, each
// with the flag aliases of torchvision's and timm's reference scripts
// (flags.go) and its examples (examples.go).
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "resgo",
		Short: "ResNet, Batch Normalization and transfer learning in Go",
		Long: `resgo builds torchvision's ResNet family, loads its pretrained .pth files,
trains and fine-tunes on folders of images, and runs inference fast on oneDNN.

The backend is dnnl (oneDNN) where it is built, else ref (pure Go); set
RESGO_BACKEND=ref|dnnl to choose and RESGO_THREADS=N for the thread count.

Flags have the names torchvision's and timm's reference scripts give them
too: --model (--arch), -b/--batch-size (--batch), --opt (--optimizer),
--sched (--schedule), -j (--workers), --wd (--weight-decay) and
--output-dir (--out where it is a folder); each command's help says which.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("resgo {{.Version}}\n")
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
	root.AddCommand(versionCmd(), infoCmd(), trainCmd(), evalCmd(), predictCmd(), embedCmd(), serveCmd(), exportCmd(), splitCmd(), weightsCmd(), benchCmd(), demoCmd(), experimentCmd(), selftestCmd())
	// After every command is added: what applies to all of them.
	addAliases(root)
	showArchOptional(root)
	addExamples(root)
	return root
}

// versionString returns resgo's version: the one set at build time, else
// the module version of `go install`, else "dev".
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the backends built in and what they run on (library, CPU instruction set)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "resgo %s\nbackends: %v (default first)\nthreads: %d\n", versionString(), backend.Names(), backend.DefaultThreads())
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
