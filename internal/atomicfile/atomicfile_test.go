package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if err := Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "first")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("content %q", b)
	}
	os.Chmod(path, 0o600)

	// A failing writer leaves the old file and no temporary file.
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	// So does a panicking one.
	func() {
		defer func() { recover() }()
		Write(path, func(w io.Writer) error { panic("oops") })
	}()
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("content after failures %q", b)
	}
	if err := Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "second")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the replaced file's 0600", fi.Mode())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "out.bin" {
		t.Errorf("%s holds %v, want only out.bin", dir, names)
	}

	if err := Write(filepath.Join(dir, "no/such/dir/x"), func(io.Writer) error { return nil }); err == nil {
		t.Error("missing directory: no error")
	}
}

// TestCleanStale kills a process in the middle of a Write, as a crash or
// kill -9 would, and checks that CleanStale removes the temporary file it
// left, and nothing else.
func TestCleanStale(t *testing.T) {
	if dir := os.Getenv("ATOMICFILE_KILLED_WRITE"); dir != "" {
		// The child: start writing, say so, and hang until killed.
		Write(filepath.Join(dir, "last.safetensors"), func(w io.Writer) error {
			io.WriteString(w, "the first part of a checkpoint")
			os.Stdout.WriteString("writing\n")
			time.Sleep(time.Hour)
			return nil
		})
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCleanStale$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_KILLED_WRITE="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "writing\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the writer did not start: %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	left, err := filepath.Glob(filepath.Join(dir, ".last.safetensors.tmp-*"))
	if err != nil || len(left) != 1 || !IsTemp(filepath.Base(left[0]), "last.safetensors") {
		t.Fatalf("the killed write left %v (%v), want one temporary file", left, err)
	}
	// Files that are not Write's temporary files of the names cleaned.
	keep := []string{"last.safetensors", ".other.bin.tmp-123", ".last.safetensors.tmp-x1", ".last.safetensors.tmp-", "last.safetensors.tmp-5"}
	for _, n := range keep {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".last.safetensors.tmp-77"), 0o755); err != nil { // a folder
		t.Fatal(err)
	}
	removed, err := CleanStale(dir, "last.safetensors", "history.csv")
	if err != nil || len(removed) != 1 || removed[0] != left[0] {
		t.Fatalf("CleanStale removed %v (%v), want %v", removed, err, left)
	}
	for _, n := range append(keep, ".last.safetensors.tmp-77") {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}
	if removed, err := CleanStale(filepath.Join(dir, "missing"), "x"); err != nil || len(removed) != 0 {
		t.Errorf("a missing folder: %v, %v", removed, err)
	}
}
