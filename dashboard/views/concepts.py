"""Concepts: the two objectives as the papers write them, and how they show up in this dashboard."""

import streamlit as st

st.title("Concepts")

left, right = st.columns(2, gap="large")
with left:
    st.header("GAN (Goodfellow et al., 2014)")
    st.markdown("A discriminator $D$ and a generator $G$ play a two-player minimax game "
                "with value function (eq. 1):")
    st.latex(r"\min_G \max_D V(D,G) = \mathbb{E}_{x\sim p_\text{data}}\big[\log D(x)\big]"
             r" + \mathbb{E}_{z\sim p_z}\big[\log\big(1 - D(G(z))\big)\big]")
    st.markdown("$D$ ascends $V$; its loss is the binary cross-entropy "
                "$-\\log D(x) - \\log(1-D(G(z)))$, the **D loss** curve. Early on $D$ rejects samples easily "
                "and $\\log(1-D(G(z)))$ saturates, so the paper (Sec. 3) trains $G$ to maximise "
                "$\\log D(G(z))$ instead: the **non-saturating** generator loss, the **G loss** curve.")
    st.latex(r"\mathcal{L}_G^{\text{NS}} = -\,\mathbb{E}_{z\sim p_z}\big[\log D(G(z))\big]")
    st.markdown("For a fixed $G$ the best discriminator is "
                "$D^*(x) = p_\\text{data}(x) / (p_\\text{data}(x) + p_g(x))$, and the game's "
                "optimum is $p_g = p_\\text{data}$ with $D^* = 1/2$ everywhere: the "
                "**mean D(x)** and **mean D(G(z))** curves drift towards each other.")
with right:
    st.header("VAE (Kingma & Welling, 2014)")
    st.markdown("An encoder $q_\\phi(z\\mid x)$ and a decoder $p_\\theta(x\\mid z)$, separate networks with "
                "**separate parameters** $\\phi$ and $\\theta$, are trained together by maximising the "
                "evidence lower bound (ELBO, eq. 3):")
    st.latex(r"\log p_\theta(x) \;\ge\; \mathcal{L}(\theta,\phi;x) = "
             r"\mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]"
             r" - D_{\mathrm{KL}}\big(q_\phi(z\mid x)\,\|\,p(z)\big)")
    st.markdown("Maximising the ELBO is minimising the **−ELBO** curve = **reconstruction** "
                "$-\\mathbb{E}_q[\\log p_\\theta(x\\mid z)]$ (Bernoulli decoder: a per-pixel cross-entropy) "
                "**+ KL**, which for $q = \\mathcal{N}(\\mu, \\sigma^2 I)$ and $p(z) = \\mathcal{N}(0, I)$ "
                "has a closed form (Appendix B):")
    st.latex(r"D_{\mathrm{KL}} = -\tfrac12 \sum_{j=1}^{J}\big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)")
    st.markdown("The expectation is estimated with a sample drawn by **reparameterisation** (Sec. 2.4), "
                "so gradients flow through $\\mu$ and $\\sigma$:")
    st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon,\qquad \varepsilon \sim \mathcal{N}(0, I)")

st.header("Side by side")
st.table({
    "": ["What it learns", "Sampling", "Encoding a real image", "Likelihood", "Training signal", "Stability",
         "Typical failure"],
    "GAN": ["A generator G: z ↦ x (and a discriminator D to train it)", "x = G(z), z ~ N(0, I): one pass",
            "None built in; here an encoder E trained to invert G", "None: implicit model, no p(x)",
            "D's judgement of real vs generated", "A saddle point: losses oscillate", "Mode collapse / dropping"],
    "VAE": ["An encoder q(z|x) and a decoder p(x|z)", "x ~ p(x|z), z ~ N(0, I): one pass",
            "μ(x), σ(x) from the encoder", "A lower bound on log p(x) (tighter: IWAE)",
            "Reconstruction + KL of every training image", "A single loss that falls steadily",
            "Blurry samples; posterior collapse"],
})

st.header("Common misreadings")
st.warning("""
A widely copied description of these two models gets several things wrong:

- The GAN value function has **logarithms**: $\\log D(x) + \\log(1 - D(G(z)))$, not $D(x) + (1 - D(G(z)))$.
- The VAE **maximises** the ELBO, i.e. **minimises** $\\mathrm{KL}(q(z\\mid x)\\,\\|\\,p(z))$ **minus** the
  expected log-likelihood $\\mathbb{E}_q[\\log p(x\\mid z)]$; it does not minimise their sum.
- A VAE's encoder and decoder **do not share parameters** ($\\phi$ and $\\theta$ are distinct).
- A latent code is **sampled by reparameterisation**, $z = \\mu + \\sigma \\odot \\varepsilon$; it is not the
  concatenation of the mean and the log-variance.
- A GAN has no "decoder that compresses data": a network mapping data to codes is an **encoder**, and a plain
  GAN has none (here one is trained separately to invert the generator).
""", icon=":material/report:")

st.caption("Goodfellow, I. et al. Generative Adversarial Nets. NeurIPS 2014. · Kingma, D. P. & Welling, M. "
           "Auto-Encoding Variational Bayes. ICLR 2014. · Burda, Y. et al. Importance Weighted Autoencoders. "
           "ICLR 2016.")
