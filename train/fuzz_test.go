package train

import (
	"encoding/json"
	"testing"

	"github.com/resgo/resgo/data"
)

// FuzzResumeState feeds arbitrary training states, as a hostile or broken
// last.safetensors carries them in its metadata, to the checks Resume
// makes before it trains. A state they accept must resume without a
// panic: its position lies within the data, its settings give a schedule
// whose rates at its step are finite or caught by the per-step check, it
// can be saved again, and comparing its recorded data with the data at
// hand never panics.
func FuzzResumeState(f *testing.F) {
	f.Add([]byte(`{"config":{"arch":"resnet20","epochs":3,"batch":16,"optimizer":"adam","lr":0.0001,"schedule":"constant","augment":{"Crop":24},"eval":{"Channels":3}},"cursor":{"Epoch":1,"Batch":2,"Pos":32},"step":9,"loss_sum":10.5,"correct":20,"seen":32,"history":[{"epoch":1}],"train_data":{"counts":[40,30,30],"hashes":["a","b","c"]}}`))
	f.Add([]byte(`{"config":{"epochs":90,"batch":1,"optimizer":"sgd","lr":1e30,"momentum":0.9,"schedule":"step","step_epochs":1,"gamma":1e300,"warmup_steps":5,"augment":{"ResizedCrop":224},"eval":{"Channels":1}},"cursor":{"Epoch":0,"Batch":100,"Pos":100},"step":100000000}`))
	f.Add([]byte(`{"config":{"epochs":2,"batch":7,"optimizer":"adamw","lr":0.1,"schedule":"cosine","warmup_steps":1000000000000,"augment":{"Crop":28},"eval":{"Channels":3}},"cursor":{"Epoch":-1,"Batch":-5,"Pos":-3},"step":-1,"train_data":{"counts":[1,2,3],"hashes":["x"]}}`))
	f.Add([]byte(`{"config":{"epochs":1,"batch":1,"optimizer":"adam","lr":1,"augment":{"Crop":1},"eval":{"Channels":3}},"cursor":{"Epoch":0,"Batch":0,"Pos":101},"loss_sum":-1}`))
	const n = 100 // training images at hand
	ds := &data.Memory{W: 1, H: 1, C: 1, Pix: make([]uint8, n), Labels: make([]int, n), ClassNames: []string{"a", "b", "c"}}
	for i := range ds.Labels {
		ds.Labels[i] = i % 3
	}
	now := Fingerprint(ds)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var st State
		if json.Unmarshal(raw, &st) != nil {
			return
		}
		if st.TrainData != nil {
			_ = diffData("training", *st.TrainData, now, ds.ClassNames)
		}
		cfg := st.Config
		cfg.Out = "run"
		if cfg.Validate() != nil || st.check(n) != nil {
			return
		}
		if c := st.Cursor; c.Pos < 0 || c.Pos > n || c.Batch < 0 || c.Batch > c.Pos || c.Epoch != len(st.History) {
			t.Fatalf("accepted cursor %+v with %d images and %d epochs of history", c, n, len(st.History))
		}
		sched, err := schedule(cfg, stepsPerEpoch(n, cfg.Batch))
		if err != nil {
			t.Fatalf("validated settings without a schedule: %v", err)
		}
		for s := st.Step; s < st.Step+3 && s >= 0; s++ {
			// A step schedule may overflow (a Gamma above 1): the per-step
			// check stops such a run. The others stay within [0, LR].
			if lr := sched.LR(s); cfg.Schedule != "step" && !(lr >= 0 && lr <= cfg.LR*(1+1e-12)) {
				t.Fatalf("%s schedule from %v, step %d: rate %v", cfg.Schedule, cfg.LR, s, lr)
			}
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("an accepted state cannot be saved again: %v", err)
		}
	})
}
