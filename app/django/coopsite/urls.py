from django.urls import path

from coopsite.site import views

urlpatterns = [
    path("health", views.health),
    path("version", views.version),
    path("slow", views.slow),
    path("lookup", views.lookup),
    path("", views.index),
]
