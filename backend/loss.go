package backend

import "math"

// CrossEntropy is the arithmetic of SoftmaxCrossEntropy on Plain values,
// shared by the backends (it is tiny next to the network): logits holds n
// rows of c classes, labels are valid class indices and smoothing is in
// [0, 1]; the caller checks them. It returns the mean over the rows of the
// cross entropy between softmax(logits) and the labels smoothed as PyTorch's
// CrossEntropyLoss(label_smoothing=eps) does: the target distribution is
// q = (1-eps)*onehot(label) + eps/c, so per row
//
//	loss = -sum_j q_j log p_j = (1-eps)*(-log p_label) + eps*mean_j(-log p_j)
//
// with log p_j = l_j - logsumexp(l), computed stably around max(l) in
// float64. If grad is not nil it receives the gradient of the mean loss,
// (p_j - q_j)/n; grad may be logits itself.
func CrossEntropy(grad, logits []float32, n, c int, labels []int, smoothing float64) float64 {
	var total float64
	for i := range n {
		row := logits[i*c : (i+1)*c]
		// logsumexp(l) = m + log sum_j exp(l_j - m), m = max_j l_j.
		m := math.Inf(-1)
		var sum float64
		for _, v := range row {
			m = max(m, float64(v))
			sum += float64(v)
		}
		mean := sum / float64(c)
		var se float64
		for _, v := range row {
			se += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(se)
		nll := lse - float64(row[labels[i]]) // -log p_label
		smooth := lse - mean                 // mean_j(-log p_j)
		total += (1-smoothing)*nll + smoothing*smooth
		if grad != nil {
			// Each gradient element is written after the last read of its
			// logit, so grad may be logits.
			g := grad[i*c : (i+1)*c]
			for j, v := range row {
				q := smoothing / float64(c)
				if j == labels[i] {
					q += 1 - smoothing
				}
				g[j] = float32((math.Exp(float64(v)-lse) - q) / float64(n))
			}
		}
	}
	return total / float64(n)
}
