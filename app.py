"""VAE Latent Explorer: `streamlit run app.py`.

The router (`st.navigation` over the files in pages/, and the shared sidebar) lives in
pages/router.py so that every page file can go through it too.
"""

from pages.router import run_app

run_app()
