package train_test

import (
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/train"
)

// An exponential moving average of a model's weights, as timm's
// ModelEmaV2(model, decay): a copy at the start, then after every
// optimizer step ema = decay*ema + (1-decay)*model. (A training with
// Recipe.ModelEMA keeps one, validates it and writes ema.safetensors.)
func ExampleNewEMA() {
	b, err := backend.New("ref", 1)
	if err != nil {
		panic(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 10, InChannels: 1})
	if err != nil {
		panic(err)
	}
	bias := nn.Params(m, false)[len(nn.Params(m, false))-1] // fc.bias
	bias.Value.Fill(0)
	ema, err := train.NewEMA(m, 0.9)
	if err != nil {
		panic(err)
	}
	bias.Value.Fill(1) // as if an optimizer step moved it
	if err := ema.Update(m); err != nil {
		panic(err)
	}
	emaBias := nn.Params(ema.Model(), false)[len(nn.Params(m, false))-1]
	fmt.Printf("%s: model %.1f, EMA %.1f\n", bias.Name, bias.Value.Values()[0], emaBias.Value.Values()[0])
	// Output: fc.bias: model 1.0, EMA 0.1
}
