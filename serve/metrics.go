package serve

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // by handler and status code
	latency   *prometheus.HistogramVec // of /predict, by status code
	batchSize prometheus.Histogram     // images per forward pass
	forward   prometheus.Histogram     // seconds per forward pass
	dropped   prometheus.Counter       // jobs skipped: their client went away
}

// newMetrics registers s's metrics: those below, the queue's length, and
// the Go runtime's and the process's (memory, CPU, open files).
func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resgo_http_requests_total",
			Help: "HTTP requests answered, by handler (the path, or \"other\") and status code.",
		}, []string{"handler", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "resgo_predict_duration_seconds",
			Help:    "Time to answer POST /predict, from its headers read to its answer written, by status code.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1 ms to 16 s
		}, []string{"code"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resgo_batch_size",
			Help:    "Images per forward pass.",
			Buckets: prometheus.LinearBuckets(1, 1, s.opts.MaxBatch),
		}),
		forward: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resgo_forward_duration_seconds",
			Help:    "Time of a forward pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resgo_dropped_requests_total",
			Help: "Queued requests left out of their batch because their client went away.",
		}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "resgo_queue_length",
		Help: "Preprocessed requests waiting for the model.",
	}, func() float64 { return float64(len(s.queue)) })
	capacity := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "resgo_queue_capacity",
		Help: "The most requests that may wait for the model (--queue); more are answered 503.",
	}, func() float64 { return float64(cap(s.queue)) })
	m.reg.MustRegister(m.requests, m.latency, m.batchSize, m.forward, m.dropped, queue, capacity,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the metrics in Prometheus's text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// count counts h's answers by status code, labelled handler.
func (m *metrics) count(handler string, h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(prometheus.Labels{"handler": handler}), h)
}

// time observes h's latency by status code.
func (m *metrics) time(h http.HandlerFunc) http.HandlerFunc {
	return promhttp.InstrumentHandlerDuration(m.latency, h)
}
