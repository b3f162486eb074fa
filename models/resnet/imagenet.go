package resnet

import (
	_ "embed"
	"strings"
)

// imagenetClasses holds the 1000 ImageNet-1k class names in index order,
// one per line, as torchvision's weights' meta["categories"].
//
//go:embed imagenet_classes.txt
var imagenetClasses string

// ImageNetClasses returns the 1000 ImageNet class names of torchvision's
// weights, by class index.
func ImageNetClasses() []string {
	return strings.Split(strings.TrimSuffix(imagenetClasses, "\n"), "\n")
}
