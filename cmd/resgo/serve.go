package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/serve"
)

func serveCmd() *cobra.Command {
	var arch, weights, classFile, addr string
	var maxPixels int64
	o := serve.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "serve --weights FILE [--addr :8080]",
		Short: "Serve predictions over HTTP, with a web page (POST /predict with an image; GET / in a browser)",
		Long: `Serve predictions over HTTP: GET / is a web page to choose or drop an
image and see its top-5 classes; POST /predict with an image as the body or
as the "image" file of a multipart form (?topk=K); GET /info (the model),
GET /metrics (Prometheus), GET /healthz. Errors are JSON {"error": "..."}
with their status (400, 404, 405, 413, 415, 500, 503).

Concurrent requests are decoded in parallel and classified together: one
forward pass takes up to --max-batch queued images, waiting up to
--max-wait for more while other requests are in the server. At most --queue
requests wait for the model; beyond, 503 with Retry-After.

The limits bound what clients can make the server hold: --max-conns
connections at once (more wait to be accepted), each within
--read-header-timeout for its headers, --read-timeout for the whole request,
--write-timeout for its answer and --idle-timeout between requests; bodies
up to --max-body-bytes (413 beyond), images up to --max-pixels (from their
headers, before decoding; 400 beyond) and, for models that do not crop,
model inputs up to --max-input-pixels. Memory for bodies is at most
--max-conns times --max-body-bytes.

SIGINT or SIGTERM shut down gracefully: no new connections, requests in
flight answered within --shutdown-timeout, then exit 0 (an error if some
had to be cut off).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxPixels < 1 {
				return fmt.Errorf("--max-pixels %d: must be at least 1", maxPixels)
			}
			data.MaxPixels = maxPixels
			clf, err := loadClassifier(arch, weights, classFile)
			if err != nil {
				return err
			}
			s, err := serve.New(clf, o)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s (%d classes) on %s: curl --data-binary @image.jpg %s, or open %s in a browser\n",
				clf.Model.Name, len(clf.Classes), ln.Addr(), predictURL(ln.Addr()), pageURL(ln.Addr()))
			if err := s.Serve(ctx, ln); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "shut down: every request answered")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "", "architecture (default: read from the checkpoint or the weights' tensors)")
	f.StringVar(&weights, "weights", "", "a resgo checkpoint, a .pth or .safetensors state dict, or a torchvision weights name")
	f.StringVar(&classFile, "classes", "", "class_indices.json (default: the checkpoint's classes, or ImageNet's)")
	f.StringVar(&addr, "addr", ":8080", "address to listen on")
	f.IntVar(&o.MaxBatch, "max-batch", o.MaxBatch, "most images in one forward pass")
	f.DurationVar(&o.MaxWait, "max-wait", o.MaxWait, "longest wait for a batch to fill while other requests are in the server (0: none)")
	f.IntVar(&o.Queue, "queue", o.Queue, "most requests waiting for the model (503 with Retry-After beyond)")
	f.IntVar(&o.MaxConns, "max-conns", o.MaxConns, "connections open at once; more wait to be accepted")
	f.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "largest request body in bytes (413 beyond)")
	f.Int64Var(&maxPixels, "max-pixels", data.DefaultMaxPixels, "largest image in pixels (width x height), read from its header before decoding (400 beyond)")
	f.IntVar(&o.MaxInputPixels, "max-input-pixels", o.MaxInputPixels, "largest model input in pixels after preprocessing, for models that do not crop (400 beyond)")
	f.IntVar(&o.MaxHeaderBytes, "max-header-bytes", o.MaxHeaderBytes, "largest request line and headers in bytes")
	f.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", o.ReadHeaderTimeout, "time to read a request's headers")
	f.DurationVar(&o.ReadTimeout, "read-timeout", o.ReadTimeout, "time to read a whole request, body included")
	f.DurationVar(&o.WriteTimeout, "write-timeout", o.WriteTimeout, "time to write a response")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "time a kept-alive connection may wait for its next request")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "time to finish the requests in flight on SIGINT or SIGTERM")
	requireFlags(cmd, "weights")
	return cmd
}

// predictURL returns the address of the /predict endpoint of a server
// listening on addr, for the banner's curl line: the host it listens on,
// or localhost when it listens on every interface (":8080", "0.0.0.0",
// "[::]").
func predictURL(addr net.Addr) string { return pageURL(addr) + "predict" }

// pageURL returns the address of the web page of a server listening on
// addr (see predictURL).
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
