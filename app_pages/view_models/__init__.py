"""What the pages show and the form state they keep, without Streamlit: each module here turns
core's services into what one page or part needs (and back), so that the pages stay thin."""
