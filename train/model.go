package train

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

// Transfer is what part of a pretrained network is trained, the three ways
// the tutorial explains.
type Transfer struct {
	// From is the first stage trained: 0 trains everything (mode "all"),
	// k in 1..4 freezes the stem and the stages before layer k (mode
	// "from:layerK"), and -1 freezes the whole backbone and trains only the
	// new fc layer (mode "head").
	From int
}

// ParseTransfer reads "all", "from:layerK" or "head".
func ParseTransfer(s string) (Transfer, error) {
	switch {
	case s == "" || s == "all":
		return Transfer{From: 0}, nil
	case s == "head":
		return Transfer{From: -1}, nil
	case strings.HasPrefix(s, "from:layer"):
		k, err := strconv.Atoi(strings.TrimPrefix(s, "from:layer"))
		if err == nil && k >= 1 && k <= 4 {
			return Transfer{From: k}, nil
		}
	}
	return Transfer{}, fmt.Errorf("transfer mode %q: want all, from:layerK (K = 1..4) or head", s)
}

// String returns the mode as ParseTransfer reads it.
func (t Transfer) String() string {
	switch t.From {
	case 0:
		return "all"
	case -1:
		return "head"
	}
	return fmt.Sprintf("from:layer%d", t.From)
}

// Apply freezes the modules of m that this mode does not train. Frozen BN
// layers run on their running statistics and do not update them.
func (t Transfer) Apply(m *resnet.Model) error {
	if t.From == 0 {
		return nil
	}
	if t.From > len(m.Layers) {
		return fmt.Errorf("transfer mode %s: %s has only %d stages", t, m.Name, len(m.Layers))
	}
	nn.Freeze(m.Conv1)
	if m.BN1 != nil { // nil in a network without BN
		nn.Freeze(m.BN1)
	}
	last := len(m.Layers) // head: every stage
	if t.From > 0 {
		last = t.From - 1
	}
	for _, st := range m.Layers[:last] {
		nn.Freeze(st)
	}
	return nil
}

// Pretrained builds arch with the given weights (see
// modelfile.LoadPretrained) and replaces its head with a new one for
// numClasses classes, as the tutorial does (load_weights.py, option 1). For
// torchvision's weights it also returns their table entry, whose
// preprocessing training must use; nil otherwise.
func Pretrained(b backend.Backend, arch, weights string, numClasses int, seed uint64) (*resnet.Model, *resnet.Weights, error) {
	m, w, err := modelfile.LoadPretrained(b, arch, weights, seed)
	if err != nil {
		return nil, nil, err
	}
	if err := m.ReplaceHead(numClasses, seed); err != nil {
		return nil, nil, err
	}
	return m, w, nil
}
