package serve

import (
	"github.com/resgo/resgo/predict"
)

// SetClassify replaces the forward pass of s, for tests of slow and
// failing models and of the batching.
func SetClassify(s *Server, f func(inputs []predict.Input, k int) ([]predict.Result, error)) {
	s.classify = f
}

// Drain marks s as shutting down, as Serve does when its context is done.
func Drain(s *Server) { s.draining.Store(true) }

// InFlight returns the number of requests in s's handler.
func InFlight(s *Server) int64 { return s.inFlight.Load() }

// QueueLen returns the number of requests waiting for the model.
func QueueLen(s *Server) int { return len(s.queue) }
