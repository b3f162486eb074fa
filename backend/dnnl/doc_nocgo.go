//go:build !cgo

// Package dnnl is resgo's oneDNN backend. It needs cgo and the oneDNN
// library (libdnnl); in a build without cgo it is empty and registers
// nothing, so backend.Default falls back to backend/ref.
package dnnl
