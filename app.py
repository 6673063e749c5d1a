"""VAE Latent Explorer: `streamlit run app.py`.

The router: page config, the page list, `st.navigation` and the shared sidebar. A page is one
entry in PAGES and one script in pages/ named after its URL.
"""

import streamlit as st

from ui.routing import routing
from ui.sidebar import sidebar
from vae_core.hosting import seconds_since_a_page_ran
from vae_core.projection import warm_up_in_background

WARM_UP_DELAY_S = 20.0  # after the first page of a server, before UMAP's warm-up starts
QUIET_S = 3.0  # and then it waits until no page has begun running for this long

# URL path (and pages/<name>.py), title, icon; the first is the default page
PAGES = [
    ("map", "Latent map", ":material/scatter_plot:"),
    ("sliders", "Sliders", ":material/tune:"),
    ("interpolate", "Interpolate", ":material/linear_scale:"),
    ("generate", "Generate", ":material/auto_awesome:"),
    ("anomalies", "Anomalies", ":material/troubleshoot:"),
    ("beta_study", "β study", ":material/compare:"),
    ("representations", "Representations", ":material/school:"),
    ("train", "Train", ":material/model_training:"),
]


def main() -> None:
    st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")
    pages = [st.Page(f"pages/{name}.py", title=title, icon=icon, default=i == 0)
             for i, (name, title, icon) in enumerate(PAGES)]
    page = st.navigation({"VAE Latent Explorer": pages})
    sidebar()
    with routing():
        page.run()
    # a while after the first page is drawn, the server compiles (or loads from numba's disk cache)
    # what a first UMAP needs, in a daemon thread, so the map a user asks for later does not wait for
    # it; not at once, where it held the interpreter lock while the browser fetched the decoder and
    # the user made a first move, and not while pages run (six sessions' releases waited up to 0.8 s
    # behind it); the Latent map page asks for it at once
    warm_up_in_background(delay_s=WARM_UP_DELAY_S, quiet=lambda: seconds_since_a_page_ran() > QUIET_S)


if __name__ == "__main__":  # as Streamlit runs it; importing PAGES runs nothing
    main()
