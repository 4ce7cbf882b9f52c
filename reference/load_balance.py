"""Balancing images across data-parallel ranks by total size."""

from __future__ import annotations


def get_load_balance_assignment(
    sizes: list[int],
    num_gpus: int = 2,
) -> tuple[list[int], list[int], list[int]]:
    """Assign images to ``num_gpus`` ranks so that total sizes are balanced.

    Returns ``(shuffle_indices, gpu_sample_counts, grouped_sizes_per_gpu)``,
    three lists:

    * ``shuffle_indices`` is a permutation of ``range(len(sizes))`` listing
      rank 0's images, then rank 1's, ...;
    * ``gpu_sample_counts[g]`` is how many images rank ``g`` got
      (``num_gpus`` entries, summing to ``len(sizes)``);
    * ``grouped_sizes_per_gpu[g]`` is the total size of rank ``g``'s images.

    The assignment is the greedy "largest first" rule of the documented
    example (``[1000, 100, 200, 50]`` on 2 ranks gives ``[0, 2, 1, 3]``,
    ``[1, 3]``, ``[1000, 350]``): images are taken in decreasing size (equal
    sizes by increasing index) and each goes to the rank with the smallest
    total so far (ties to the lowest rank); a rank lists its images in the
    order it received them. Consequently the largest and smallest totals differ
    by at most ``max(sizes)``. No images gives ``([], [0] * num_gpus,
    [0] * num_gpus)``.

    Preconditions: ``num_gpus >= 1`` and every size ``>= 0``; otherwise
    ``ValueError``.
    """
    if num_gpus < 1:
        raise ValueError(f"num_gpus={num_gpus} must be >= 1")
    negative = [s for s in sizes if s < 0]
    if negative:
        raise ValueError(f"sizes must be >= 0, got {negative[0]}")
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    members: list[list[int]] = [[] for _ in range(num_gpus)]
    loads = [0] * num_gpus
    for image in order:
        target = min(range(num_gpus), key=lambda g: (loads[g], g))
        members[target].append(image)
        loads[target] += sizes[image]
    shuffle = [image for group in members for image in group]
    return shuffle, [len(group) for group in members], loads
