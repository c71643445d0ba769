"""``pixel_da`` — pixel-level adversarial adaptation (Bousmalis et al., CVPR 2017, "PixelDA"), our reading.

Why this one: the factor study (docs/results/domain-factors.md) found the cabin's gap sits in what the camera does to
the *pixels* — the near-infrared spectrum pales brows and lips, the light and the background change — while
feature-level alignment (DANN and its relatives) has to match whole feature distributions, which a target
that is a third neutral cannot match without misplacing neutral faces. PixelDA moves the studio faces to the
cabin's look instead and keeps their labels: a small generator ``G`` re-renders each labelled studio face; a
PatchGAN discriminator ``D`` judges local patches of ``G(x_s)`` against unlabelled cabin faces; the
classifier learns from both the real and the re-rendered studio faces. Only the classifier is exported.

Parts and losses:

* ``G`` (:class:`Translator`): a residual image-to-image net in the normalised input space, at half resolution
  inside (cheap on a CPU), its last convolution zero-initialised so it starts as the identity. Its receptive
  field (~15 px of a 64 px crop) reaches a brow or a lip, not the whole face: it can change how features look,
  not which expression the face shows.
* ``D`` (:class:`PatchDiscriminator`): strided convolutions to a grid of real/fake logits (8 x 8 for a 64 px
  crop at the default 3 layers, each logit seeing a ~38 px patch), trained in
  ``discriminator_step`` by its own Adam on ``G(x_s)`` (detached) vs ``x_t`` with the least-squares GAN loss
  (Mao et al. 2017: bounded gradients, steadier than the log loss over a few hundred steps).
* ``L = CE(C(x_s)) + w_task·CE(C(sg(G(x_s)))) + λ(p)·LSGAN_G(D(G(x_s))) + w_content·PMSE(G(x_s), x_s)``: the
  task term teaches the classifier the translated faces under the studio labels. By default it does not
  reach ``G`` (``sg``: stop-gradient): allowed to (``task_through_generator``, PixelDA's joint training), ``G``
  learned to make faces easier to classify rather than more cabin-like and lost 10 points on the dev world
  (docs/results/dev-pixel-da-settings.md). What keeps ``G`` from erasing expressions is its small receptive field and
  PMSE, PixelDA's content-similarity loss: a mean squared error that ignores a uniform shift in brightness
  (``mean(d²) − mean(d)²``), so ``G`` may change the overall light freely but pays for every local change.
  λ(p) is the shared warm-up schedule with ``lambda_max`` as the adversarial weight.

``G``'s parameters are a trainer parameter group at ``lr × g_lr_mult``; ``disc_acc`` is D's accuracy on the
last batch (≈ 100 %: G cannot fool it; ≈ 50 %: the translated faces pass for cabin faces patch by patch).
After training, ``translated.png`` in the run folder shows what ``G`` learned: studio faces, their translations,
the difference (mid-gray = unchanged) and unlabelled cabin faces for comparison.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_edge.runtime.atomic import atomic_write

from ..models import FerNet
from .base import Batch, Logs, Method, _acc
from .frozen import frozen_call
from .gradient_reversal import grl_lambda


class Translator(nn.Module):
    """``x + r(x)``: stride-2 convolution in, ``blocks`` 3x3 convolutions at half size, bilinear back up."""

    def __init__(self, channels: int, width: int = 16, blocks: int = 2):
        super().__init__()
        layers: List[nn.Module] = [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x + self.out(h)


class PatchDiscriminator(nn.Module):
    """``layers`` stride-2 convolutions (``width``, 2×, 4×, …) and a 3x3 logit layer: one logit per patch.

    Each layer about doubles the patch a logit sees (2 layers: ~18 px of a 64 px crop, 3: ~38 px, 4: ~78 px,
    the whole crop). A smaller
    patch judges texture and local contrast, which the generator can change, rather than head pose and face
    shape, which it cannot."""

    def __init__(self, channels: int, width: int = 16, layers: int = 3):
        super().__init__()
        mods: List[nn.Module] = []
        c_in, c_out = channels, width
        for _ in range(layers):
            mods += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
            c_in, c_out = c_out, 2 * c_out
        mods.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def pmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PixelDA's pairwise mean squared error per image, averaged: ``mean(d²) − mean(d)²`` with ``d = a − b``.

    Equal to the variance of the difference, so a uniform brightness change costs nothing."""
    d = (a - b).flatten(1)
    return (d.pow(2).mean(1) - d.mean(1).pow(2)).mean()


class PixelDA(Method):
    name = "pixel_da"

    def __init__(self, cfg: Any, net: FerNet, labels: Sequence[str], num_identities: int = 0):
        super().__init__(cfg, net, labels, num_identities)
        c = self.mcfg = cfg.pixel_da
        ch = net.spec.in_channels
        self.translator = Translator(ch, c.g_width, c.g_blocks)
        self.disc = PatchDiscriminator(ch, c.d_width, c.d_layers)
        self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=c.d_lr, betas=tuple(c.d_betas))

    def own_optimizer_parameters(self) -> List[nn.Parameter]:
        return list(self.disc.parameters())

    def own_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        return {"discriminator": self.d_opt}

    def parameter_groups(self, lr: float) -> List[Dict[str, Any]]:
        g_ids = {id(p) for p in self.translator.parameters()}
        groups = super().parameter_groups(lr)
        for g in groups:
            g["params"] = [p for p in g["params"] if id(p) not in g_ids]
        groups = [g for g in groups if g["params"]]
        groups.append({"params": list(self.translator.parameters()), "lr": lr * float(self.mcfg.g_lr_mult),
                       "name": "translator"})
        return groups

    def write_artefacts(self, out_dir: Any, xs: torch.Tensor, xt: torch.Tensor) -> List[str]:
        import cv2

        fake = self.translator(xs)
        mean, std = float(xs.mean()), float(xs.std()) or 1.0

        def faces(x: torch.Tensor) -> torch.Tensor:  # ±2 sd of the source fill the gray range
            return (x - mean) / (4 * std)

        rows = [faces(xs), faces(fake), (fake - xs) * 0.5, faces(xt)]  # the change at half contrast
        tiles = [np.concatenate(list(np.clip(r[:, 0].float().cpu().numpy() + 0.5, 0, 1)), axis=1) for r in rows]
        grid = (np.concatenate(tiles, axis=0) * 255).astype(np.uint8)
        grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        ok, png = cv2.imencode(".png", grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            return []
        atomic_write(Path(out_dir) / "translated.png", png.tobytes())
        return ["translated.png"]

    def discriminator_step(self, batch: Batch) -> Logs:
        with torch.no_grad():
            fake = self.translator(batch.xs)
        d_real, d_fake = self.disc(batch.xt), self.disc(fake)
        loss = 0.5 * (((d_real - 1) ** 2).mean() + (d_fake ** 2).mean())
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.grad_sync(self.disc.parameters())
        self.d_opt.step()
        acc = 0.5 * (float((d_real > 0.5).float().mean()) + float((d_fake < 0.5).float().mean()))
        return {"d_gan": float(loss.detach()), "disc_acc": acc}

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        c = self.mcfg
        ls = self.net.classify(self.features(batch.xs, "source"))
        ce = self.task_loss(ls, batch.ys)
        fake = self.translator(batch.xs)
        lf = self.net.classify(self.features(fake if c.task_through_generator else fake.detach(), "source"))
        ce_fake = self.task_loss(lf, batch.ys)
        g_adv = 0.5 * ((frozen_call(self.disc, fake) - 1) ** 2).mean()  # D is trained only in discriminator_step
        content = pmse(fake, batch.xs)
        lam = grl_lambda(batch.p, float(c.lambda_max), float(c.warmup))
        total = ce + float(c.task_weight) * ce_fake + lam * g_adv + float(c.content_weight) * content
        logs: Logs = {"cls": float(ce.detach()), "cls_translated": float(ce_fake.detach()),
                      "g_adv": float(g_adv.detach()), "content": float(content.detach()), "lambda": lam,
                      "src_acc": _acc(ls, batch.ys), "translated_acc": _acc(lf, batch.ys)}
        if any(float(getattr(c, k)) > 0 for k in ("im_weight", "mcc_weight", "self_training")):
            lt = self.net.classify(self.features(batch.xt, "target"))
            total = total + self.target_companion_terms(batch, lt, logs)
        return total, logs
