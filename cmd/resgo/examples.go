package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the command lines each command's help shows under
// "Examples:", by command path. Every one of them is a valid command line
// of its command (TestExamples parses them all); the folder and file names
// are those of the tutorial (flower_photos, flower_data, resNet34.pth) and
// of the runs the README makes. A line starting with # is a comment.
var examples = map[string][]string{
	"resgo": {
		"# the tutorial's steps: split_data.py, train.py, predict.py, batch_predict.py",
		"resgo split --src flower_photos --dst flower_data",
		"resgo train --data flower_data --weights resnet34.LEGACY --out runs/flowers",
		"resgo predict --weights runs/flowers/best.safetensors tulip.jpg",
		"resgo predict --weights runs/flowers/best.safetensors imgs/",
	},
	"resgo version": {
		"resgo version",
	},
	"resgo info": {
		"resgo info --arch resnet34 --num-classes 5",
		"resgo info --arch resnet20 --size 28 --in-channels 1 --num-classes 10",
	},
	"resgo train": {
		"# the tutorial's train.py: resnet34 from torchvision's weights, Adam 1e-4, batch 16, 3 epochs",
		"resgo train --data flower_data --weights resnet34.LEGACY --out runs/flowers",
		"# its three transfer modes (load_weights.py): all (the default), from:layerK, head",
		"resgo train --data flower_data --weights resnet34.LEGACY --transfer head --out runs/head",
		"resgo train --data flower_data --weights resnet34.LEGACY --transfer from:layer3 --out runs/layer3",
		"# from scratch, a single folder split 80/20",
		"resgo train --data flower_photos --val-split 0.2 --arch resnet18 --epochs 10 --out runs/scratch",
		"# torchvision's and timm's flag names",
		"resgo train --data fashion-mnist --model resnet20 --opt sgd --lr 0.1 --sched cosine -b 128 -j 2 --epochs 8 --output-dir runs/fm",
		"# continue an interrupted run, or extend a finished one",
		"resgo train --resume --out runs/flowers --epochs 5",
	},
	"resgo eval": {
		"resgo eval --data flower_data --checkpoint runs/flowers/best.safetensors",
		"resgo eval --data flower_data --checkpoint resNet34.pth --classes class_indices.json --out runs/eval",
		"resgo eval --data fashion-mnist --checkpoint runs/fm/best.safetensors",
	},
	"resgo predict": {
		"# the tutorial's predict.py (one image) and batch_predict.py (a folder)",
		"resgo predict --weights runs/flowers/best.safetensors tulip.jpg",
		"resgo predict --weights runs/flowers/best.safetensors imgs/",
		"# the tutorial's own resNet34.pth, and torchvision's ImageNet weights",
		"resgo predict --weights resNet34.pth --classes class_indices.json tulip.jpg",
		"resgo predict --weights resnet50.IMAGENET1K_V2 --topk 5 --json imgs/",
	},
	"resgo serve": {
		"resgo serve --weights runs/flowers/best.safetensors --addr :8080",
		"# then: curl --data-binary @tulip.jpg http://localhost:8080/predict, or open http://localhost:8080/",
		"# forward passes of up to 16 images, 128 requests waiting at most",
		"resgo serve --weights resnet50.IMAGENET1K_V2 --max-batch 16 --queue 128",
	},
	"resgo export": {
		"# a state dict for torchvision: resnet34(num_classes=5).load_state_dict(torch.load('resNet34.pth'))",
		"resgo export --checkpoint runs/flowers/best.safetensors --out resNet34.pth",
	},
	"resgo split": {
		"# the tutorial's split_data.py: 10% of each class into flower_data/val",
		"resgo split --src flower_photos --dst flower_data",
		"resgo split --src flower_photos --dst flower_data --val-split 0.2 --seed 1 --overwrite",
	},
	"resgo weights": {
		"resgo weights list",
		"resgo weights download resnet34.LEGACY",
	},
	"resgo weights list": {
		"resgo weights list",
	},
	"resgo weights download": {
		"# the tutorial's resnet34-333f7ec4.pth, and resnet50's newer weights",
		"resgo weights download resnet34.LEGACY resnet50.IMAGENET1K_V2",
	},
	"resgo bench": {
		"resgo bench --arch resnet50 --batch 8",
		"resgo bench --arch resnet18 --batch 16 --mode train --transfer head",
	},
	"resgo demo": {
		"resgo demo --quick",
		"resgo demo --out runs/demo",
	},
	"resgo experiment": {
		"# the ResNet paper's degradation (Fig. 1/6), then residual responses (Fig. 7) of the same nets",
		"resgo experiment degradation --out runs/experiments",
		"resgo experiment residual-response --out runs/experiments",
		"resgo experiment batchnorm --quick",
		"resgo experiment transfer --full --seed 1",
		"resgo experiment all --out runs/experiments",
	},
	"resgo selftest": {
		"resgo selftest --arch resnet50",
	},
}

// addExamples sets the Example of cmd and of every command below it from
// examples.
func addExamples(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		addExamples(c)
	}
	if lines, ok := examples[cmd.CommandPath()]; ok {
		cmd.Example = exampleIndent(lines)
	}
}

// exampleIndent indents the lines of an example as cobra's help shows
// them, under "Examples:".
func exampleIndent(lines []string) string {
	return "  " + strings.Join(lines, "\n  ")
}
