from django.urls import path

from bench.baseline import views

urlpatterns = [
    path("constant", views.ConstantView.as_view()),
    path("insert", views.InsertView.as_view()),
]
