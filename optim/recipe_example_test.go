package optim_test

import (
	"fmt"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/optim"
	"github.com/resgo/resgo/tensor"
)

// Clipping the gradients' global norm before a step, as
// torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).
func ExampleClipGradNorm() {
	w := &nn.Var{Name: "weight", Value: tensor.FromValues([]float32{0, 0}, 2)}
	w.Grad = tensor.FromValues([]float32{3, 4}, 2) // norm 5
	params := []nn.NamedVar{{Name: "fc.weight", Var: w}}
	norm, err := optim.ClipGradNorm(params, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("norm before %.1f, gradient after %.4f\n", norm, w.Grad.Values())
	// Output: norm before 5.0, gradient after [0.6000 0.8000]
}

// ReduceLROnPlateau: the rate halves after two epochs without a lower
// validation loss.
func ExamplePlateau() {
	p, err := optim.NewPlateau(0.1, 0.5, 1, 0)
	if err != nil {
		panic(err)
	}
	for _, loss := range []float64{1.0, 0.8, 0.81, 0.82, 0.7} {
		p.Step(loss)
		fmt.Printf("loss %.2f -> lr %g\n", loss, p.LR())
	}
	// Output:
	// loss 1.00 -> lr 0.1
	// loss 0.80 -> lr 0.1
	// loss 0.81 -> lr 0.1
	// loss 0.82 -> lr 0.05
	// loss 0.70 -> lr 0.05
}
