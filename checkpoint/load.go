package checkpoint

import (
	"fmt"
	"sort"
	"strings"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// LoadOptions control how a state dict is loaded into a model.
type LoadOptions struct {
	// Partial loads the entries that match and leaves the model's other
	// variables as they are, like PyTorch's load_state_dict(strict=False).
	// Missing and unexpected keys are then reported, not errors.
	Partial bool
	// Skip lists name prefixes of checkpoint entries to leave out, such as
	// "fc." to keep a new head (the tutorial's load_weights.py, option 2).
	Skip []string
}

// LoadReport says what a load did.
type LoadReport struct {
	Loaded     int      // entries copied into the model
	Missing    []string // model variables the checkpoint lacks
	Unexpected []string // checkpoint entries the model lacks
	Skipped    []string // checkpoint entries left out by LoadOptions.Skip
}

// String summarizes the report as PyTorch prints load_state_dict's result.
func (r *LoadReport) String() string {
	return fmt.Sprintf("loaded %d tensors; missing keys: %v; unexpected keys: %v; skipped: %v", r.Loaded, r.Missing, r.Unexpected, r.Skipped)
}

// Load copies a state dict into a model's parameters and buffers, matching
// them by torchvision's names. It is strict by default: every missing,
// unexpected and shape-mismatched key is reported by name in one error.
// A missing num_batches_tracked is tolerated (files saved before PyTorch 0.4.1
// have none; it is set to 0), as PyTorch does. Shape mismatches are errors
// even with Partial, as in PyTorch: skip the entries (LoadOptions.Skip) or
// replace the model's head after loading.
func Load(m nn.Module, sd *StateDict, opt LoadOptions) (*LoadReport, error) {
	rep := &LoadReport{}
	vars := nn.State(m)
	byName := make(map[string]nn.NamedVar, len(vars))
	for _, v := range vars {
		byName[v.Name] = v
	}
	skipped := func(name string) bool {
		for _, p := range opt.Skip {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}

	var mismatched []string
	used := map[string]bool{}
	for _, k := range sd.Keys {
		t := sd.Tensors[k]
		if skipped(k) {
			rep.Skipped = append(rep.Skipped, k)
			continue
		}
		v, ok := byName[k]
		if !ok {
			rep.Unexpected = append(rep.Unexpected, k)
			continue
		}
		used[k] = true
		if v.Kind == nn.Counter {
			if t.Numel() != 1 {
				mismatched = append(mismatched, fmt.Sprintf("%s: checkpoint shape %v, model holds one counter", k, t.Shape))
				continue
			}
			if t.I64 != nil {
				*v.Count = t.I64[0]
			} else {
				*v.Count = int64(t.F32[0])
			}
			rep.Loaded++
			continue
		}
		if !tensor.SameShape(t.Shape, v.Value.Shape()) {
			mismatched = append(mismatched, fmt.Sprintf("%s: checkpoint shape %v, model shape %v", k, t.Shape, v.Value.Shape()))
			continue
		}
		copy(v.Value.Mutable(), t.F32)
		rep.Loaded++
	}
	for _, v := range vars {
		if used[v.Name] || skipped(v.Name) {
			continue
		}
		if v.Kind == nn.Counter {
			*v.Count = 0
			continue
		}
		rep.Missing = append(rep.Missing, v.Name)
	}

	var problems []string
	if len(mismatched) > 0 {
		problems = append(problems, "size mismatch for "+strings.Join(mismatched, "; "))
	}
	if !opt.Partial {
		if len(rep.Missing) > 0 {
			problems = append(problems, "missing keys: "+strings.Join(rep.Missing, ", "))
		}
		if len(rep.Unexpected) > 0 {
			problems = append(problems, "unexpected keys: "+strings.Join(rep.Unexpected, ", "))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return rep, fmt.Errorf("checkpoint: loading the state dict: %s", strings.Join(problems, "; "))
	}
	return rep, nil
}

// FromModule returns a model's state as a state dict in torchvision's order
// and names: float32 parameters and buffers, int64 counters. The values are
// copies.
func FromModule(m nn.Module) *StateDict {
	sd := NewStateDict()
	for _, v := range nn.State(m) {
		if v.Kind == nn.Counter {
			sd.Add(NewI64(v.Name, nil, []int64{*v.Count}))
			continue
		}
		sd.Add(FromTensor(v.Name, v.Value))
	}
	return sd
}
