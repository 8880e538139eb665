"""guardduty-ecs-controller local AWS sandbox: moto server plus extensions that make it answer like AWS."""
