package transform_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/resgo/resgo/transform"
)

// A training transform as timm's --aa rand-m9-n2 --reprob 0.25 builds it:
// a padded random crop and a flip, RandAugment (2 operations at magnitude
// 9), ToTensor and normalization, then random erasing.
func ExampleAugment_autoAugment() {
	aug := transform.SmallImageTrain(32, 4)
	aug.AutoAugment, aug.ReProb = "rand-m9-n2", 0.25
	img := transform.NewImage(32, 32, 3)
	dst := make([]float32, 3*32*32)
	rng := rand.New(rand.NewPCG(1, 2))
	aug.Apply(img, rng, dst, transform.Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}})
	h, w := aug.OutputSize(32, 32)
	fmt.Println(h, w, len(dst))
	// Output: 32 32 3072
}
