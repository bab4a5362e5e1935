// Facade's GraphiQL page: mounts GraphiQL (the UMD bundle's global) on #graphiql, sending
// operations to the endpoint named by the element's data-endpoint. A token goes in the Headers
// tab: {"Authorization": "Bearer <token>"}.
(function () {
  var root = document.getElementById('graphiql');
  var endpoint = root.getAttribute('data-endpoint');
  var fetcher = GraphiQL.createFetcher({ url: endpoint });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: 'headers',
      defaultHeaders: '{\n  "Authorization": "Bearer <paste a token: facade token --sub you>"\n}',
      shouldPersistHeaders: true,
    })
  );
})();
