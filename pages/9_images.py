"""Your images page: the class's own images, from a .zip or the camera, become the dataset the Train page trains."""
import streamlit as st

import chrome
import own_images
import widgets

chrome.inside_navigation()

st.title("📷 Your own images")
st.markdown("Teach a network your own classes: rock, paper and scissors; ripe and unripe bananas; the class's pets. "
            "The network learns whatever tells your classes apart, so give every class the same background and "
            "light: if all the rocks lie on a desk and all the papers on a carpet, it may learn desk against carpet.")
widgets.default("images_source", own_images.ZIP)
source = st.segmented_control("Your images from", [own_images.ZIP, own_images.CAMERA], key="images_source")
own_images.show_refusal()
if source == own_images.CAMERA:
    own_images.camera()
else:
    own_images.zip_upload()
own_images.ready()
