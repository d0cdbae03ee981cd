"""Episodes: the browser, the replay page and the aligned comparison."""

urlpatterns = []
