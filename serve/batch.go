package serve

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/resgo/resgo/predict"
)

// job is one request's preprocessed image, waiting for the model.
type job struct {
	ctx    context.Context // the request's: done when its client went away
	in     predict.Input
	k      int       // classes to answer
	queued time.Time // when it entered the queue
	// running is set when the batcher takes the job into a forward pass.
	running atomic.Bool
	done    chan reply // the batcher's answer (buffered: it never waits)
}

// reply is the batcher's answer to a job.
type reply struct {
	res     predict.Result
	err     error
	batch   int           // images in its forward pass
	queued  time.Duration // waiting in the queue
	forward time.Duration // the forward pass
}

// batcher runs the forward passes until Close: it takes the first queued
// job, gathers more of the same input size, up to MaxBatch, for at most
// MaxWait, and classifies them in one forward pass. It waits only while
// other requests are in the server (being read, decoded, or answered:
// the clients just answered are about to send their next images), so a
// lone client does not wait. A job of another size (models that do not
// crop) starts the next batch.
func (s *Server) batcher() {
	var next *job
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-s.quit:
				return
			}
		}
		batch := []*job{first}
		timer := time.NewTimer(s.opts.MaxWait)
	gather:
		for len(batch) < s.opts.MaxBatch {
			var j *job
			select {
			case j = <-s.queue:
			default:
				if s.predicting.Load() <= int64(len(batch)) {
					break gather // no other request is in the server
				}
				select {
				case j = <-s.queue:
				case <-timer.C:
					break gather
				case <-s.quit:
					timer.Stop()
					return
				}
			}
			if j.in.H != first.in.H || j.in.W != first.in.W {
				next = j
				break
			}
			batch = append(batch, j)
		}
		timer.Stop()
		s.run(batch)
	}
}

// run classifies a batch in one forward pass and answers each job. Jobs
// whose client went away are left out; a panic in the model answers the
// batch with an error instead of taking the server down.
func (s *Server) run(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if j.ctx.Err() != nil {
			s.metrics.dropped.Inc()
			continue
		}
		j.running.Store(true)
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	inputs := make([]predict.Input, len(live))
	k := 1
	for i, j := range live {
		inputs[i] = j.in
		k = max(k, j.k)
	}
	began := time.Now()
	results, err := s.forward(inputs, k)
	took := time.Since(began)
	s.metrics.batchSize.Observe(float64(len(live)))
	s.metrics.forward.Observe(took.Seconds())
	if err == nil && len(results) != len(live) {
		err = fmt.Errorf("the model answered %d results for %d images", len(results), len(live))
	}
	for i, j := range live {
		rep := reply{err: err, batch: len(live), queued: began.Sub(j.queued), forward: took}
		if err == nil {
			rep.res = results[i]
			rep.err = checkResult(rep.res)
			rep.res.Top = rep.res.Top[:min(j.k, len(rep.res.Top))]
		}
		j.done <- rep
	}
}

// forward runs s.classify, turning a panic into an error.
func (s *Server) forward(inputs []predict.Input, k int) (results []predict.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the model failed on a batch of %d: %v", len(inputs), p)
		}
	}()
	return s.classify(inputs, k)
}

// checkResult reports a result that is not finite: json cannot encode
// NaN, and a NaN answer is a broken model, not a prediction.
func checkResult(res predict.Result) error {
	for i, v := range res.Logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("the model's output is not a number (logit %d is %v): its weights are broken", i, v)
		}
	}
	for _, c := range res.Top {
		if math.IsNaN(c.Prob) || math.IsInf(c.Prob, 0) {
			return fmt.Errorf("the model's output is not a number (probability of %q is %v)", c.Name, c.Prob)
		}
	}
	return nil
}
