module github.com/resgo/resgo

go 1.26.0

require github.com/nlpodyssey/gopickle v0.3.0 // pickle reader for PyTorch .pth files

require (
	codeberg.org/sbinet/npyio v0.14.0 // resgo embed's .npy files
	github.com/schollz/progressbar/v3 v3.19.1 // progress bars of training and evaluation
	github.com/spf13/cobra v1.10.2 // the resgo command line
	github.com/spf13/pflag v1.0.9 // cobra's flags: which ones a --resume gave explicitly
	github.com/yalue/onnxruntime_go v1.27.0 // the onnx tests run the exported models in ONNX Runtime (cgo, test only)
	golang.org/x/image v0.48.0 // BMP, TIFF and WebP decoders
	golang.org/x/net v0.62.0 // netutil.LimitListener: resgo serve's bound on open connections
	gonum.org/v1/plot v0.17.0 // PNG learning curves and confusion matrices
	google.golang.org/protobuf v1.36.12 // ONNX models are protobuf messages (onnx/onnxpb, generated from onnx.proto)
)

require (
	github.com/chromedp/chromedp v0.23.0 // drives headless Chromium in the test of resgo serve's web page
	github.com/prometheus/client_golang v1.25.0 // resgo serve's /metrics, in Prometheus's text format
)

require (
	codeberg.org/go-fonts/liberation v0.5.0 // indirect
	codeberg.org/go-latex/latex v0.2.0 // indirect
	codeberg.org/go-pdf/fpdf v0.11.1 // indirect
	git.sr.ht/~sbinet/gg v0.7.0 // indirect
	github.com/ajstarks/svgo v0.0.0-20211024235047-1546f124cd8b // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/golang/freetype v0.0.0-20170609003504-e2365dfdc4a0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.47.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	gonum.org/v1/gonum v0.17.0 // indirect
)
