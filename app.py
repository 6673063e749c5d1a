"""VAE Latent Explorer: `streamlit run app.py`.

The router: page config, the page list, `st.navigation`, each page's heading and the shared sidebar.
A page is one entry in PAGES and one script in pages/ named after its URL.

Everything slow to import (the sidebar, and with it torch) is imported after the navigation and the
heading are drawn, so a fresh server's first visit shows both at once (ui/routing.py).
"""

import streamlit as st

from ui.routing import error_details, one_line_errors, routing

WARM_UP_DELAY_S = 20.0  # after the first page of a server, before UMAP's warm-up starts
QUIET_S = 3.0  # and then it waits until no page has begun running for this long
SHOW_NAVIGATION = "client.showSidebarNavigation"

# URL path (and pages/<path>.py), title (the navigation's and the page's heading), icon; the first is
# the default page
PAGES = [
    ("map", "Latent map", ":material/scatter_plot:"),
    ("how-it-works", "How it works", ":material/lightbulb:"),
    ("sliders", "Sliders", ":material/tune:"),
    ("interpolate", "Interpolate", ":material/linear_scale:"),
    ("generate", "Generate", ":material/auto_awesome:"),
    ("anomalies", "Anomalies", ":material/troubleshoot:"),
    ("beta_study", "β study", ":material/compare:"),
    ("representations", "Representations", ":material/school:"),
    ("checkup", "Check-up", ":material/health_and_safety:"),
    ("train", "Train", ":material/model_training:"),
]


def main() -> None:
    st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")
    pages = [st.Page(f"pages/{name}.py", title=title, icon=icon, default=i == 0)
             for i, (name, title, icon) in enumerate(PAGES)]
    if st.get_option(SHOW_NAVIGATION) is False:  # off in .streamlit/config.toml only to hide Streamlit's own list
        st.set_option(SHOW_NAVIGATION, True)
    page = st.navigation({"VAE Latent Explorer": pages})
    st.header(page.title)
    from ui.display import page_style  # the app's own CSS, before any page draws

    page_style()

    from ui.sidebar import sidebar  # slow the first time in a server (torch): after the page is named
    from vae_core.hosting import seconds_since_a_page_ran
    from vae_core.limits import public_mode
    from vae_core.projection import warm_up_in_background

    error_details(public_mode())
    with one_line_errors("The sidebar"):  # a page or the sidebar that fails is one line, never a traceback
        sidebar(page.url_path)
    with routing(), one_line_errors():
        page.run()
    # a while after the first page is drawn, the server compiles (or loads from numba's disk cache)
    # what a first UMAP needs, in a daemon thread, so the map a user asks for later does not wait for
    # it; not at once, where it held the interpreter lock while the browser fetched the decoder and
    # the user made a first move, and not while pages run (six sessions' releases waited up to 0.8 s
    # behind it); the Latent map page asks for it at once when its default map is not on disk
    warm_up_in_background(delay_s=WARM_UP_DELAY_S, quiet=lambda: seconds_since_a_page_ran() > QUIET_S)


if __name__ == "__main__":  # as Streamlit runs it; importing PAGES runs nothing
    main()
