package serve

import (
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// SetClassify replaces the classifier call of s, for tests of slow and
// failing models.
func SetClassify(s *Server, f func(images []*transform.Image, names []string, k int) ([]predict.Result, error)) {
	s.classify = f
}

// Drain marks s as shutting down, as Serve does when its context is done.
func Drain(s *Server) { s.draining.Store(true) }

// InFlight returns the number of requests in s's handler.
func InFlight(s *Server) int64 { return s.inFlight.Load() }
