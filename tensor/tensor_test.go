package tensor

import (
	"strings"
	"testing"
)

func TestResetReusesStorage(t *testing.T) {
	x := New(2, 3)
	x.Mutable()[5] = 7
	v := x.Version()
	x.Reset(Plain, nil, 4, 4)
	if &x.Storage()[0] != &x.data[:1][0] || cap(x.Storage()) < 6 {
		t.Fatal("storage not reused")
	}
	if x.Version() == v {
		t.Error("Reset did not bump the version")
	}
	if got := x.Shape(); len(got) != 1 || got[0] != 4 {
		t.Errorf("shape %v", got)
	}
	x.Reset(Plain, nil, 100, 10, 10)
	if len(x.Values()) != 100 {
		t.Error("grown storage has the wrong size")
	}
}

func TestReshapeSharesAndChecks(t *testing.T) {
	x := FromValues([]float32{1, 2, 3, 4, 5, 6}, 1, 6, 1, 1)
	y := x.Reshape(1, 6)
	y.Mutable()[2] = 30
	if x.Values()[2] != 30 {
		t.Error("Reshape copied the storage")
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "changes the number of elements") {
			t.Errorf("bad reshape: %v", r)
		}
	}()
	x.Reshape(4)
}

func TestOpaqueValuesPanics(t *testing.T) {
	x := &Tensor{}
	x.Reset(Opaque, "blocked", 32, 1, 3, 2, 2)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "convert it with backend.ToPlain") {
			t.Errorf("Values of an opaque tensor: %v", r)
		}
	}()
	x.Values()
}

func TestCloneCopyFillString(t *testing.T) {
	x := FromValues([]float32{1, 2}, 2)
	c := x.Clone()
	c.Mutable()[0] = 9
	if x.Values()[0] != 1 {
		t.Error("Clone shares storage")
	}
	x.CopyFrom(c)
	if x.Values()[0] != 9 {
		t.Error("CopyFrom")
	}
	x.Fill(3)
	if x.Values()[1] != 3 || x.String() != "Tensor[2 plain]" {
		t.Errorf("Fill/String: %v %s", x.Values(), x)
	}
}
