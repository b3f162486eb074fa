package main

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/dist"
	"github.com/resgo/resgo/train"
)

// distOptions are resgo train's flags for data-parallel training.
type distOptions struct {
	bucketMB  float64
	syncBN    bool
	noOverlap bool
	timeout   time.Duration
}

// addDistFlags adds the data-parallel flags to resgo train and says how to
// use them in its help.
func addDistFlags(cmd *cobra.Command, o *distOptions) {
	cmd.Long += `

On several processes or machines (a binary built with make build-mpi):
  mpirun -np N resgo train ...
trains one model data-parallel, as PyTorch's DistributedDataParallel: each
rank takes its shard of every epoch, the gradients are averaged over the
ranks (MPI all-reduce in buckets of --bucket-mb, started during the backward
pass), so N ranks with --batch B step as one process with batch N*B. Rank 0
alone writes --out and shows the progress; --resume works the same way.
Batch norm uses each rank's own batch statistics (rank 0's running
statistics are given to all before each step, as DDP does), or with
--sync-bn the statistics of all ranks' batches together.`
	f := cmd.Flags()
	f.Float64Var(&o.bucketMB, "bucket-mb", train.DefaultBucketMB, "under mpirun: size of the gradient buckets summed in one all-reduce, in MiB")
	f.BoolVar(&o.syncBN, "sync-bn", false, "under mpirun: batch norm with the statistics of all ranks' batches (PyTorch's SyncBatchNorm)")
	f.BoolVar(&o.noOverlap, "no-overlap", false, "under mpirun: start the gradient all-reduces after the backward pass, not during it (to measure the overlap)")
	f.DurationVar(&o.timeout, "dist-timeout", dist.DefaultTimeout, "under mpirun: how long a rank waits for the others before it fails")
}

// distRun is the data-parallel side of a resgo train: the communicator
// (nil in one process).
type distRun struct {
	comm dist.Comm
}

// openDist joins the MPI job when resgo runs under mpirun and sets cfg's
// Dist. It returns where this rank's messages go: out on rank 0, nowhere
// on the others.
func openDist(o *distOptions, cfg *train.Config, out io.Writer) (*distRun, io.Writer, error) {
	if math.IsNaN(o.bucketMB) || o.bucketMB <= 0 || o.bucketMB > train.MaxBucketMB {
		return nil, nil, fmt.Errorf("--bucket-mb %v: want more than 0 and at most %d MiB", o.bucketMB, train.MaxBucketMB)
	}
	if o.timeout <= 0 {
		return nil, nil, fmt.Errorf("--dist-timeout %v: want a positive duration", o.timeout)
	}
	comm, err := dist.Open(dist.Options{Timeout: o.timeout})
	if err != nil {
		return nil, nil, err
	}
	if comm.Size() <= 1 {
		return &distRun{}, out, nil
	}
	cfg.Dist = train.Distributed{Comm: comm, BucketMB: o.bucketMB, SyncBN: o.syncBN, NoOverlap: o.noOverlap}
	if comm.Rank() != 0 {
		out = io.Discard
	}
	fmt.Fprintf(out, "data-parallel training on %d MPI ranks (batch %d per rank, %d in all), batch norm %s\n",
		comm.Size(), cfg.Batch, cfg.Batch*comm.Size(), map[bool]string{false: "per rank (rank 0's running statistics)", true: "synchronized (--sync-bn)"}[o.syncBN])
	return &distRun{comm: comm}, out, nil
}

// root reports whether this process writes the output: rank 0 or the only
// process.
func (d *distRun) root() bool { return d.comm == nil || d.comm.Rank() == 0 }

// finish reports the communication measurements on rank 0 and ends MPI
// after a successful run. After an error it leaves MPI as it is: the
// process exits with an error, and mpirun ends the other ranks.
func (d *distRun) finish(tr *train.Trainer, out io.Writer, err error) {
	if d.comm == nil {
		return
	}
	if err != nil {
		return
	}
	if tr != nil {
		s := tr.DistStats()
		if s.Steps > 0 {
			fmt.Fprintf(out, "data-parallel: %d ranks, %d gradient buckets, %d steps: %.2f ms per step waiting for the all-reduces after the backward pass; %d of %d started during it had finished by its end\n",
				s.Ranks, s.Buckets, s.Steps, float64(s.Wait.Microseconds())/1e3/float64(s.Steps), s.Done, s.Started)
		}
	}
	if cerr := d.comm.Close(); cerr != nil {
		fmt.Fprintln(out, "warning:", cerr)
	}
}
