package main

const dbPassword = "RsCQV1PQ6oXp^L9VLD"
