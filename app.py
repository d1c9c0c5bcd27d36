"""FER workbench: the frame every page runs in. Run with `streamlit run app.py`.

`ui.frame.navigation` builds the sidebar (Home, Dataset, Train, Evaluate, Live), sets the
page config and keeps the place of the dataset banner, then runs the chosen page from
`app_pages/`. With no data configured the app uses the synthetic demo set (and says so).
"""

import fer_core  # noqa: F401  (CPU flags before anything loads TensorFlow)
from ui.frame import navigation

navigation()
