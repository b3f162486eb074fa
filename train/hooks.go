package train

// Phase is a pass of an epoch: training or validation.
type Phase int

// The passes of an epoch, in the order Run makes them.
const (
	Training   Phase = iota // the optimizer's steps over the training data
	Validation              // the evaluation of the validation data
)

// String returns "training" or "validation".
func (p Phase) String() string {
	if p == Validation {
		return "validation"
	}
	return "training"
}

// Progress says how far a pass of an epoch is.
type Progress struct {
	Phase Phase
	// Epoch counts from 1 to Epochs.
	Epoch, Epochs int
	// Step is the number of the pass's batches done, those done before a
	// resume included; Steps is the number of batches of a pass when no
	// image is skipped.
	Step, Steps int
	// Loss, Accuracy and ImagesPerSec are the epoch's mean training loss,
	// training accuracy and training speed so far (zero in validation and
	// before the first batch).
	Loss, Accuracy, ImagesPerSec float64
	// BatchLoss is the mean training loss of the last batch alone (zero
	// in validation and before the first batch): a loss curve step by step.
	BatchLoss float64
}

// Hooks are the functions Run calls as the training goes; nil ones are
// skipped. For each epoch Run calls PassStart, Batch after every batch and
// PassEnd for the training pass, the same for the validation pass, then
// Epoch. They run on Run's goroutine: a slow hook slows the training.
type Hooks struct {
	// PassStart is called when a pass starts; Step is the number of
	// batches already done (not zero when a resumed epoch continues).
	PassStart func(p Progress)
	// Batch is called after every batch of a pass.
	Batch func(p Progress)
	// PassEnd is called when a pass ends, or stops because Run's context
	// is cancelled, with the last progress reported.
	PassEnd func(p Progress)
	// Epoch is called after each epoch, once its checkpoints and the
	// history file are written, with the epoch's record and the history so
	// far (ending with it). An error ends Run with that error.
	Epoch func(rec EpochStats, history []EpochStats) error
}

func (h Hooks) passStart(p Progress) {
	if h.PassStart != nil {
		h.PassStart(p)
	}
}

func (h Hooks) batch(p Progress) {
	if h.Batch != nil {
		h.Batch(p)
	}
}

func (h Hooks) passEnd(p Progress) {
	if h.PassEnd != nil {
		h.PassEnd(p)
	}
}

func (h Hooks) epoch(rec EpochStats, history []EpochStats) error {
	if h.Epoch != nil {
		return h.Epoch(rec, history)
	}
	return nil
}
