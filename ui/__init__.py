"""Streamlit-side helpers shared by the pages (the only package besides app_pages/ that imports
Streamlit; fer_core never does). Importing it applies the process settings in `ui.runtime`."""

from ui.runtime import keep_keras_state

keep_keras_state()
