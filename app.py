"""VAE Latent Explorer: `streamlit run app.py`.

The router: `st.navigation` over the files in pages/, and the sidebar every page shares.
"""

import streamlit as st

from pages.common import sidebar

st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")

PAGES = [
    st.Page("pages/map.py", title="Latent map", icon=":material/scatter_plot:", default=True),
    st.Page("pages/sliders.py", title="Sliders", icon=":material/tune:"),
    st.Page("pages/interpolate.py", title="Interpolate", icon=":material/linear_scale:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("pages/anomalies.py", title="Anomalies", icon=":material/troubleshoot:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]

page = st.navigation({"VAE Latent Explorer": PAGES})
sidebar()
page.run()
