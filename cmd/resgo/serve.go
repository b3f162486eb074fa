package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/serve"
)

func serveCmd() *cobra.Command {
	var arch, weights, classFile, addr string
	cmd := &cobra.Command{
		Use:   "serve --weights FILE [--addr :8080]",
		Short: "Serve predictions over HTTP (POST /predict with an image; GET /info)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clf, err := loadClassifier(arch, weights, classFile)
			if err != nil {
				return err
			}
			srv := &http.Server{Addr: addr, Handler: serve.New(clf).Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			shutdown := make(chan error, 1)
			go func() {
				<-ctx.Done()
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				shutdown <- srv.Shutdown(shut)
			}()
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s (%d classes) on %s: curl --data-binary @image.jpg http://localhost%s/predict\n", clf.Model.Name, len(clf.Classes), addr, addr)
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			// Closed by Shutdown: wait for the requests in flight.
			if err := <-shutdown; err != nil {
				return fmt.Errorf("shutting down the server: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "", "architecture (read from the checkpoint or the weights' name when not given)")
	f.StringVar(&weights, "weights", "", "a resgo checkpoint, a .pth or .safetensors state dict, or a torchvision weights name")
	f.StringVar(&classFile, "classes", "", "class_indices.json (default: the checkpoint's classes, or ImageNet's)")
	f.StringVar(&addr, "addr", ":8080", "address to listen on")
	requireFlags(cmd, "weights")
	return cmd
}
