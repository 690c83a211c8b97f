package io.skipgpt.tensor;

/**
 * The scalars of one AdamW step (Loshchilov and Hutter; PyTorch's {@code torch.optim.AdamW}) for
 * {@link Backend#adamw}, computed on the host once per step and parameter. Per element, in double precision:
 * <pre>
 *   g     = grad · gradScale, rounded to float32
 *   m     = beta1 · m + (1 − beta1) · g
 *   v     = beta2 · v + (1 − beta2) · g²
 *   param = param · keep − stepSize · m / (√v / sqrtCorrection2 + eps)
 * </pre>
 * with m and v stored as float32 after the update reads them. Every backend computes the same bits.
 *
 * @param stepSize lr / (1 − beta1^t) at step t: the first moment's bias correction folded into the learning rate
 * @param sqrtCorrection2 √(1 − beta2^t): the second moment's bias correction
 * @param keep 1 − lr · weightDecay for a decayed parameter (decoupled weight decay), else 1
 * @param gradScale what the gradient is multiplied by first: 1 / the micro-batches summed into it, times the
 *     gradient-clipping factor, so that neither needs a pass of its own (the rounding to float32 is the one a
 *     gradient scaled in place would get)
 */
public record AdamUpdate(double stepSize, double sqrtCorrection2, double beta1, double beta2, double eps, double keep,
                         double gradScale) {}
