"""Concepts: the two objectives as the papers write them, and how they show up in this dashboard."""

import streamlit as st

from dashboard import components as ui
from dashboard import jobs_client, runs

st.title("Concepts")


def balance_sentence(name: str, epochs: dict) -> str:
    """What the run's per-epoch mean D(x) and D(G(z)) did, from its history (first, middle, last epoch)."""
    real, fake, ep = epochs["train/d_real"], epochs["train/d_fake"], epochs["epoch"]
    picks = sorted({0, (len(ep) - 1) // 2, len(ep) - 1})
    path = " → ".join(f"{real[i]:.2f} / {fake[i]:.2f} (epoch {ep[i]})" for i in picks)
    first, last = real[0] - fake[0], real[-1] - fake[-1]
    if abs(last) < 0.1:
        verdict = "they end close to each other, near the balance of 1/2"
    elif len(ep) > 1 and abs(last) < 0.75 * abs(first):
        verdict = (f"they move towards each other but stay apart (gap {first:.2f} → {last:.2f}): D can still tell "
                   f"real {runs.noun()}s from generated ones")
    elif len(ep) > 1 and abs(last) > 1.25 * abs(first):
        verdict = f"they move apart (gap {first:.2f} → {last:.2f}): D gets better at telling real from generated"
    else:
        verdict = (f"they stay apart (gap {first:.2f} → {last:.2f}): D keeps telling real {runs.noun()}s from "
                   "generated ones, the usual picture in practice")
    return (f"In the GAN run picked in the sidebar (**{name}**), the per-epoch means of D(x) / D(G(z)) go "
            f"{path}: {verdict}. See *Training curves*.")


def gan_run_sentence() -> str:
    info = runs.selected("gan")
    if info is None or runs.check_run(info):
        return ""
    epochs = runs.history(info.path).get("epochs", {})
    if not {"epoch", "train/d_real", "train/d_fake"} <= set(epochs) or not epochs["epoch"]:
        return ""
    sentence = balance_sentence(ui.text(info.name), epochs)
    if runs.config(info.path).get("model_config", {}).get("loss") == "hinge":
        sentence += " (This run uses the hinge loss: D outputs a score, and the curves show its sigmoid.)"
    return sentence


def gan_recipe_text() -> str:
    """The stabilisers of models/gan.py, each with its paper, and which of them the picked GAN run uses."""
    parts = [
        "- **Spectral normalisation** (Miyato et al. 2018) divides each of D's weight matrices by its largest "
        "singular value, so D cannot change faster than its input (1-Lipschitz layers). The plain recipe uses "
        "DCGAN's batch norm in D instead (Radford et al. 2016).",
        "- **Hinge loss** (Lim & Ye 2017; Miyato et al. 2018): D minimises "
        "$\\mathbb{E}[\\max(0, 1 - D(x))] + \\mathbb{E}[\\max(0, 1 + D(G(z)))]$ on raw scores, G minimises "
        "$-\\mathbb{E}[D(G(z))]$. With it the **mean D(x)** curves show $\\sigma$(score), not a probability.",
        "- **An exponential moving average of G's weights** (Yazıcı et al. 2019): "
        "$\\theta_{\\text{EMA}} \\leftarrow \\beta\\,\\theta_{\\text{EMA}} + (1-\\beta)\\,\\theta_G$ after every "
        "G step. The averaged G draws every sample on these pages and is what the encoder inverts; it smooths "
        "out the step-to-step swings of the game. It is not trained by gradients, so it is not a third player.",
        "- **Two time-scale update rule** (Heusel et al. 2017): D and G get different learning rates.",
        "- **Minibatch standard deviation** (Karras et al. 2018): D sees how varied the batch is, which makes a "
        "generator that keeps drawing the same image easy to reject.",
        "- **A mixture of Gaussians as G's input** (Ben-Yosef & Weinshall 2018; 20 modes by default for the conv "
        "nets, `latent_modes`): "
        "a continuous G maps one connected Gaussian onto ten separate classes, so some samples must fall between "
        "two of them; with several modes the boundaries can fall in the gaps between the modes. Such a run's "
        "codes are the mixture's draws (a mode's mean plus z): its encoder maps images to them, and its "
        "interpolations run between them.",
        "- **Keeping the best epoch**: after every epoch 2,000 samples are scored by the evaluation classifier "
        "(Training curves → Quality over training); the run keeps the epoch with the lowest Fréchet distance.",
    ]
    picked = runs.selected("gan")
    if picked is not None and not picked.error:
        c = runs.config(picked.path)
        m = c.get("model_config", {})
        used = [f"loss **{m.get('loss', 'non-saturating')}**", f"D normalisation **{m.get('d_norm', 'batch')}**",
                f"EMA decay **{m.get('ema', 0.0)}**", f"D/G learning-rate ratio **{m.get('d_lr_ratio', 1.0)}**",
                f"minibatch std **{'on' if m.get('mbstd') else 'off'}**",
                f"latent **{str(m['latent_modes']) + ' Gaussian modes' if m.get('latent_modes') else 'one Gaussian'}**",
                f"kept epoch **{c.get('best_epoch') or 'the last'}**"]
        name = ui.text(jobs_client.display_name(picked))
        parts.append(f"\nThe GAN run picked in the sidebar ({name}) uses: " + ", ".join(used) + ". "
                     "docs/gan.md's ablation tables measure what each change does at one training budget.")
    return "\n".join(parts)


left, right = st.columns(2, gap="large")
with left:
    st.header("GAN (Goodfellow et al., 2014)")
    st.markdown("A discriminator $D$ and a generator $G$ play a two-player minimax game "
                "with value function (eq. 1):")
    # display equations are broken into left-aligned lines (array, not aligned: KaTeX's aligned sticks out
    # of its box by a pixel or two) so they fit half a page's width
    st.latex(r"\begin{array}{l}\min_G \max_D V(D,G) \\ \quad= \mathbb{E}_{x\sim p_\text{data}}\big[\log D(x)\big]"
             r" \\ \quad\phantom{=} + \mathbb{E}_{z\sim p_z}\big[\log\big(1 - D(G(z))\big)\big]\end{array}")
    st.markdown("$D$ ascends $V$; its loss is the binary cross-entropy "
                "$-\\log D(x) - \\log(1-D(G(z)))$, the **D loss** curve. Early on $D$ rejects samples easily "
                "and $\\log(1-D(G(z)))$ saturates, so the paper (Sec. 3) trains $G$ to maximise "
                "$\\log D(G(z))$ instead: the **non-saturating** generator loss, the **G loss** curve.")
    st.latex(r"\mathcal{L}_G^{\text{NS}} = -\,\mathbb{E}_{z\sim p_z}\big[\log D(G(z))\big]")
    st.markdown("For a fixed $G$ the best discriminator is "
                "$D^*(x) = p_\\text{data}(x) / (p_\\text{data}(x) + p_g(x))$, and the game's "
                "optimum is $p_g = p_\\text{data}$ with $D^* = 1/2$ everywhere: at the optimum the "
                "**mean D(x)** and **mean D(G(z))** curves would both sit at 1/2. How close real training gets "
                "depends on the recipe: the players are networks updated in turns, not the ideal functions of "
                "the proof, and a mean of 1/2 does not prove $p_g = p_\\text{data}$. "
                + gan_run_sentence())
    with st.expander("What this project's GAN adds to the paper", icon=":material/tune:"):
        st.markdown(gan_recipe_text())
with right:
    st.header("VAE (Kingma & Welling, 2014)")
    st.markdown("An encoder $q_\\phi(z\\mid x)$ and a decoder $p_\\theta(x\\mid z)$, separate networks with "
                "**separate parameters** $\\phi$ and $\\theta$, are trained together by maximising the "
                "evidence lower bound (ELBO, eq. 3):")
    st.latex(r"\begin{array}{l}\log p_\theta(x) \;\ge\; \mathcal{L}(\theta,\phi;x) \\"
             r" \quad= \mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big] \\"
             r" \quad\phantom{=} - D_{\mathrm{KL}}\big(q_\phi(z\mid x)\,\|\,p(z)\big)\end{array}")
    st.markdown("Maximising the ELBO is minimising the **−ELBO** curve = **reconstruction** "
                "$-\\mathbb{E}_q[\\log p_\\theta(x\\mid z)]$ (Bernoulli decoder: a per-pixel cross-entropy) "
                "**+ KL**, which for $q = \\mathcal{N}(\\mu, \\sigma^2 I)$ and $p(z) = \\mathcal{N}(0, I)$ "
                "has a closed form (Appendix B):")
    st.latex(r"D_{\mathrm{KL}} = -\tfrac12 \sum_{j=1}^{J}\big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)")
    st.markdown("The expectation is estimated with a sample drawn by **reparameterisation** (Sec. 2.4), "
                "so gradients flow through $\\mu$ and $\\sigma$:")
    st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon,\qquad \varepsilon \sim \mathcal{N}(0, I)")
    st.markdown("The VAE images on these pages are the decoder's **Bernoulli means**: each pixel shows "
                "$p_\\theta(x_i = 1\\mid z)$, not a binary image drawn from $p_\\theta(x\\mid z)$. Draws would "
                "look speckled; the means are the customary picture, and part of why VAE samples look soft.")

st.header("Side by side")
st.table({
    "": ["What it learns", "Sampling", "Encoding a real image", "Likelihood", "Training signal", "Stability",
         "Typical failure"],
    "GAN": ["A generator G: z ↦ x (and a discriminator D to train it)",
            "x = G(z), z ~ N(0, I) (here through a mixture of Gaussians): one pass",
            "None built in; here an encoder E trained to invert G", "None: implicit model, no p(x)",
            "D's judgement of real vs generated", "A saddle point: losses oscillate", "Mode collapse / dropping"],
    "VAE": ["An encoder q(z|x) and a decoder p(x|z)",
            "z ~ N(0, I), then the decoder's Bernoulli means (shown here), not draws x ~ p(x|z): one pass",
            "μ(x), σ(x) from the encoder", "A lower bound on log p(x) (tighter: IWAE)",
            "Reconstruction + KL of every training image", "A single loss that falls steadily",
            "Blurry samples; posterior collapse"],
})

st.header("Common misreadings")
st.warning("""
A widely copied description of these two models gets several things wrong:

- The GAN value function has **logarithms**: $\\log D(x) + \\log(1 - D(G(z)))$, not $D(x) + (1 - D(G(z)))$.
- The VAE **maximises** the ELBO, i.e. **minimises** $\\mathrm{KL}(q(z\\mid x)\\,\\|\\,p(z))$ **minus** the
  expected log-likelihood $\\mathbb{E}_q[\\log p(x\\mid z)]$; it does not minimise
  $\\mathrm{KL} + \\mathbb{E}_q[\\log p(x\\mid z)]$.
- A VAE's encoder and decoder **do not share parameters** ($\\phi$ and $\\theta$ are distinct).
- A latent code is **sampled by reparameterisation**, $z = \\mu + \\sigma \\odot \\varepsilon$; it is not the
  concatenation of the mean and the log-variance.
- A GAN has no "decoder that compresses data": a network mapping data to codes is an **encoder**, and a plain
  GAN has none. Here one is trained to invert the generator, never changing G or D: in the committed runs
  after the GAN, against the final generator; in runs with `encoder_epochs = 0` alongside it, one encoder
  step after each generator step, on that batch's fakes and real images.
""", icon=":material/report:")

st.caption("Goodfellow, I. et al. Generative Adversarial Nets. NeurIPS 2014. · Kingma, D. P. & Welling, M. "
           "Auto-Encoding Variational Bayes. ICLR 2014. · Burda, Y. et al. Importance Weighted Autoencoders. "
           "ICLR 2016. · Miyato, T. et al. Spectral Normalization for GANs. ICLR 2018. · Yazıcı, Y. et al. The "
           "Unusual Effectiveness of Averaging in GAN Training. ICLR 2019. · Heusel, M. et al. GANs Trained by a "
           "Two Time-Scale Update Rule Converge to a Local Nash Equilibrium. NeurIPS 2017. · Karras, T. et al. "
           "Progressive Growing of GANs. ICLR 2018. · Radford, A. et al. Unsupervised Representation Learning "
           "with Deep Convolutional GANs. ICLR 2016.")
