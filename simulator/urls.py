"""The simulator's read-only pages, under /simulator/ (the API itself is under /sim/)."""

from django.urls import path

from simulator import pages

urlpatterns = [
    path("worlds/", pages.worlds_index, name="simulator-worlds"),
    path("worlds/<slug:slug>/", pages.world_detail, name="simulator-world"),
    path("worlds/<slug:slug>/boards/<int:board_id>/", pages.board, name="simulator-board"),
    path("worlds/<slug:slug>/projects/<str:key>/board/", pages.project_board, name="simulator-project-board"),
    path("worlds/<slug:slug>/issues/<str:key>/", pages.issue_detail, name="simulator-issue"),
    path("worlds/<slug:slug>/spaces/<str:key>/", pages.space_detail, name="simulator-space"),
    path("worlds/<slug:slug>/pages/<int:page_id>/", pages.page_detail, name="simulator-page"),
]
