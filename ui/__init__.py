"""The explorer's Streamlit helpers shared by pages (the engine, vae_core, never imports this)."""
